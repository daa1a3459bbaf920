// SessionValue's JSON: any bytes are a value or an error, never a crash, and
// a value's own JSON reads back as that value.
import FuzzDriver
import Gimlet
import Glibc

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let value = try? SessionValue(json: fuzzBytes(data, size)) else { return 0 }
    guard let again = try? SessionValue(json: value.json), again == value else {
        fatalError("a value's JSON did not read back as the value")
    }
    return 0
}

exit(runFuzzer(testOneInput))
