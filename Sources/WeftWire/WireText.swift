/// Rules for text that comes from the network.
///
/// Names (sites, apps, targets, endpoint addresses) must not carry characters that rewrite a
/// terminal or a log line when printed: they are refused on the wire. Free text (reasons) is
/// kept, and escaped wherever it is printed.
public enum WireText {
    /// C0 and C1 controls, DEL, line and paragraph separators, bidirectional overrides and
    /// isolates: what can move a cursor, end a line or reorder what a reader sees.
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7f...0x9f).contains(value) || value == 0x2028 || value == 0x2029
            || (0x202a...0x202e).contains(value) || (0x2066...0x2069).contains(value)
    }

    /// Whether `text` holds none of the unsafe characters.
    public static func isSafe(_ text: String) -> Bool {
        !text.unicodeScalars.contains(where: isUnsafe)
    }

    /// `text` with each unsafe character written as `\u{…}`, for printing text that came from
    /// the network (or through an API) where a person reads it.
    public static func escaped(_ text: String) -> String {
        guard !isSafe(text) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
