// The smallest Gimlet app: four routes behind nginx.
//
//   swift build && .build/debug/hello --fastcgi unix:/tmp/hello.sock
import GimletHTTP
import GimletHost

var router = Router()

router.get("/") { _ in .text("hello") }

router.get("/hello/:name") { request in
    .text("hello, \(request.parameters["name"] ?? "")")
}

// The body back, up to 8 MiB (a larger one is in a temporary file: 413 here).
router.post("/echo") { request in
    .bytes(try request.body.collect(upTo: 8 << 20), contentType: request.contentType ?? "application/octet-stream")
}

router.get("/env") { request in
    let lines = request.environ.keys.sorted().map { "\($0)=\(request.environ[$0] ?? "")" }
    return .text(lines.joined(separator: "\n") + "\n")
}

Host.main(router)
