@_spi(Inlined) import Lib

// Each function called from its own non-inlined caller, so the machine code
// of each caller shows whether the call was inlined.
@inline(never) func callsPackagePlain(_ x: Int) -> Int { packagePlain(x) }
@inline(never) func callsPackageInlinable(_ x: Int) -> Int { packageInlinable(x) }
@inline(never) func callsSPIInlinable(_ x: Int) -> Int { spiInlinable(x) }

let n = Int(CommandLine.arguments.count)
print(callsPackagePlain(n) &+ callsPackageInlinable(n) &+ callsSPIInlinable(n))
