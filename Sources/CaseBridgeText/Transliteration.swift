import CICU
import Synchronization

/// Names written in any script, brought to plain lower-case ASCII with ICU's transforms
/// ("Any-Latin; Latin-ASCII; Lower"): 王伟 → "wang wei", Нгуен → "nguen", Đặng Thị Hương →
/// "dang thi huong". What two agencies wrote of one person in different scripts or with different
/// diacritics then compares equal, or nearly.
public enum Transliteration {
    private final class Transform: @unchecked Sendable {
        let handle: UnsafeMutablePointer<UTransliterator?>
        init?(_ id: String) {
            var status = U_ZERO_ERROR
            let units = Array(id.utf16)
            guard let handle = casebridge_utrans_open(units, Int32(units.count), &status),
                casebridge_u_failure(status) == 0
            else { return nil }
            self.handle = handle
        }
        deinit { casebridge_utrans_close(handle) }
    }

    /// One transform, used under a lock: ICU does not promise that one transliterator may run on
    /// two threads at once.
    private static let latinASCII = Mutex<Transform?>(Transform("Any-Latin; Latin-ASCII; Lower"))

    /// Texts transliterated lately, and what they became. Duplicate detection compares a candidate
    /// with every new person who shares a term with them, so the same names come back again and
    /// again, and ICU's rule-based transforms were a third of its time with real names' scripts.
    /// Names are personal data: at most `maxRemembered` are kept, in memory only, and all are
    /// forgotten when that many are kept and whenever personal data is purged (`forgetRemembered`).
    private static let remembered = Mutex<[String: String]>([:])
    static let maxRemembered = 4_096
    /// Longer texts are transliterated every time (a name is at most 128 characters).
    static let maxRememberedBytes = 1_024

    /// `text` in lower-case ASCII; `nil` when ICU's data lacks the transform (then callers fold
    /// without it).
    public static func toLatinASCII(_ text: String) -> String? {
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        if let known = remembered.withLock({ $0[text] }) { return known }
        guard let latin = transliterate(text) else { return nil }
        if text.utf8.count <= maxRememberedBytes {
            remembered.withLock { remembered in
                if remembered.count >= maxRemembered { remembered.removeAll(keepingCapacity: true) }
                remembered[text] = latin
            }
        }
        return latin
    }

    /// Forgets every text `toLatinASCII` remembers: called when personal data is purged.
    public static func forgetRemembered() { remembered.withLock { $0.removeAll() } }

    /// Whether `text` is remembered now, and how many are (for tests).
    static func isRemembered(_ text: String) -> Bool { remembered.withLock { $0[text] != nil } }
    static var rememberedCount: Int { remembered.withLock { $0.count } }

    private static func transliterate(_ text: String) -> String? {
        var units = Array(text.utf16)
        // Transliteration can lengthen text (one Han character becomes a syllable): room for that.
        let capacity = units.count * 8 + 16
        units += Array(repeating: 0, count: capacity - units.count)
        var length = Int32(text.utf16.count)
        let done: Bool = latinASCII.withLock { transform in
            guard let transform else { return false }
            var status = U_ZERO_ERROR
            casebridge_utrans_transliterate(transform.handle, &units, &length, Int32(capacity), &status)
            return casebridge_u_failure(status) == 0
        }
        guard done, length >= 0, Int(length) <= capacity else { return nil }
        return String(decoding: units[0..<Int(length)], as: UTF16.self)
    }
}
