import CLibevent
import Foundation

/// Closes a socket the polite way: send FIN, read and discard until the peer closes too (or a
/// time-out), then close. Used after refusing a TLS handshake, so that the peer receives the alert.
/// A peer that keeps trickling bytes cannot hold the socket open past `total`.
final class LingeringClose: @unchecked Sendable {
    private let fd: Int32
    private var event: OpaquePointer?
    private var retained: Unmanaged<LingeringClose>?
    private weak var loop: EventLoop?
    private let deadline: ContinuousClock.Instant
    private var onClosed: (() -> Void)?

    /// Takes a duplicate of `fd`, so the original can be closed by its owner right away; calls
    /// `onClosed` when the duplicate is closed. False when no duplicate could be made.
    @discardableResult
    static func start(
        duplicating original: Int32,
        loop: EventLoop,
        timeout: Duration = .seconds(2),
        total: Duration = .seconds(30),
        onClosed: (() -> Void)? = nil
    ) -> Bool {
        let fd = dup(original)
        guard fd >= 0 else { return false }
        _ = evutil_make_socket_nonblocking(fd)
        let linger = LingeringClose(fd: fd, deadline: .now + total, onClosed: onClosed)
        linger.retained = Unmanaged.passRetained(linger)
        loop.lingering[ObjectIdentifier(linger)] = linger
        linger.loop = loop
        linger.event = event_new(
            loop.base,
            fd,
            Int16(EV_READ | EV_PERSIST | EV_TIMEOUT),
            { _, what, context in
                Unmanaged<LingeringClose>.fromOpaque(context!).takeUnretainedValue().ready(what)
            },
            linger.retained!.toOpaque()
        )
        var tv = timeval(timeout)
        event_add(linger.event, &tv)
        // Runs after the owner's close in this loop turn: FIN goes out behind the alert.
        loop.execute { shutdown(fd, Int32(SHUT_WR)) }
        return true
    }

    private init(fd: Int32, deadline: ContinuousClock.Instant, onClosed: (() -> Void)?) {
        self.fd = fd
        self.deadline = deadline
        self.onClosed = onClosed
    }

    private func ready(_ what: Int16) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        if what & Int16(EV_READ) != 0, ContinuousClock.now < deadline {
            let n = read(fd, &buffer, buffer.count)
            if n > 0 || (n < 0 && errno == EAGAIN) { return }
        }
        // EOF, error or time-out: done.
        finish()
    }

    /// Closes at once (also when the loop stops).
    func finish() {
        guard retained != nil else { return }
        if let event { event_free(event) }
        event = nil
        close(fd)
        loop?.lingering.removeValue(forKey: ObjectIdentifier(self))
        retained?.release()
        retained = nil
        onClosed?()
        onClosed = nil
    }
}
