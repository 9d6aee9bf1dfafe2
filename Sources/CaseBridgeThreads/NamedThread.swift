import Foundation

/// Starts a thread of the node's own under a name that `top -H`, `perf` and `/proc` show, so each
/// thread's share of the CPU can be read from outside.
///
/// Foundation's `Thread.name` cannot be trusted for this on Linux: its setter applies the name only
/// once `start()` has returned on the starting thread, so a thread that names itself as it begins
/// is left unnamed about one time in ten (it then shows the name of whichever thread started it,
/// often one of Dispatch's). The thread writes its own name to the kernel instead.
///
/// Linux keeps 15 bytes of a name; a longer one is cut there rather than refused.
public func startThread(named name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        nameCurrentThread(name)
        body()
    }
    thread.start()
}

private func nameCurrentThread(_ name: String) {
    let file = open("/proc/thread-self/comm", O_WRONLY)
    guard file >= 0 else { return }  // no /proc: the thread keeps its inherited name
    let bytes = Array(name.utf8.prefix(15))  // what Linux keeps
    _ = write(file, bytes, bytes.count)
    close(file)
}
