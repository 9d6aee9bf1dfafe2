internal import CQRencode

/// QR codes (libqrencode), for enrolling an authenticator app from a screen.
public struct QRCode: Sendable {
    /// Modules per side, and each module dark or light, row by row.
    public let size: Int
    public let dark: [Bool]

    /// `text` as a QR code at error correction level M, or nil if it does not fit one.
    public init?(_ text: String) {
        guard let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M) else { return nil }
        defer { QRcode_free(code) }
        size = Int(code.pointee.width)
        dark = (0..<(size * size)).map { code.pointee.data[$0] & 1 == 1 }
    }

    /// The code for a terminal: two rows per line with Unicode half blocks, inverted (light modules
    /// drawn) so that it reads on a dark background, with the quiet zone the standard asks for.
    public var text: String {
        let quiet = 2
        func isDark(_ row: Int, _ column: Int) -> Bool {
            let r = row - quiet, c = column - quiet
            guard r >= 0, c >= 0, r < size, c < size else { return false }
            return dark[r * size + c]
        }
        let side = size + 2 * quiet
        var lines: [String] = []
        for row in stride(from: 0, to: side, by: 2) {
            var line = ""
            for column in 0..<side {
                switch (isDark(row, column), isDark(row + 1, column)) {
                case (false, false): line.append("█")
                case (false, true): line.append("▀")
                case (true, false): line.append("▄")
                case (true, true): line.append(" ")
                }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
