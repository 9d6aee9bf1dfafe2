import Foundation

// casebridge-fuzz TARGET FOLDER...
//
// Built as usual (swift build), it replays every file in the folders given (the checked-in seed
// corpora and the inputs of fixed crashes) through the harness: the test command runs it so that
// an input that once crashed stays fixed. Built by scripts/fuzz (-D FUZZING, -sanitize=fuzzer), it
// hands the other arguments to libFuzzer, which mutates the corpus for as long as it is told.

let arguments = CommandLine.arguments
if arguments.dropFirst().first == "--message-types" {  // the decode harness's selector byte, for make_seeds.py
    print(Harness.names.joined(separator: "\n"))
    exit(0)
}
// The harness is the first argument, or CASEBRIDGE_FUZZ_TARGET for the child processes that
// libFuzzer starts itself (-merge, -fork), which get only libFuzzer's own arguments.
let named = arguments.count >= 2 ? Harness(rawValue: arguments[1]) : nil
let fromEnvironment = ProcessInfo.processInfo.environment["CASEBRIDGE_FUZZ_TARGET"].flatMap(Harness.init(rawValue:))
guard let harness = named ?? fromEnvironment else {
    let targets = Harness.allCases.map(\.rawValue).joined(separator: "|")
    FileHandle.standardError.write(Data("usage: casebridge-fuzz \(targets) FOLDER...\n".utf8))
    exit(2)
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

nonisolated(unsafe) var selected = harness

/// libFuzzer's archive also carries a main that calls this; ours runs instead, through the driver.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    selected.run(UnsafeRawBufferPointer(start: data, count: count))
    return 0
}

// libFuzzer sees the program name and its own options; the harness name is ours.
let forwarded = [arguments[0]] + arguments.dropFirst(named == nil ? 1 : 2)
var argc = Int32(forwarded.count)
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = .allocate(capacity: forwarded.count + 1)
for (i, argument) in forwarded.enumerated() { argv![i] = strdup(argument) }
argv![forwarded.count] = nil
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
#else
var replayed = 0
for folder in arguments.dropFirst(named == nil ? 1 : 2) {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: folder))?.sorted() ?? []
    for file in files {
        guard let data = FileManager.default.contents(atPath: "\(folder)/\(file)") else { continue }
        data.withUnsafeBytes { harness.run($0) }
        replayed += 1
    }
}
print("replayed \(replayed) inputs through \(harness.rawValue)")
exit(replayed > 0 ? 0 : 1)
#endif
