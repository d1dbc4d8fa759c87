import NIOCore

/// Length-prefixed fields with hard limits, shared by every parser and serializer here.
extension ByteBuffer {
    mutating func readWireInteger<T: FixedWidthInteger>(_: T.Type = T.self, field: String) throws(WireError) -> T {
        guard let value = readInteger(as: T.self) else { throw WireError(.truncated, field: field) }
        return value
    }

    mutating func readWireBytes(length: Int, field: String) throws(WireError) -> [UInt8] {
        guard let bytes = readBytes(length: length) else { throw WireError(.truncated, field: field) }
        return bytes
    }

    /// Bytes behind a length prefix of type `Length`, at most `limit` of them.
    mutating func readPrefixedBytes<Length: FixedWidthInteger & UnsignedInteger>(
        _: Length.Type,
        limit: Int,
        field: String
    ) throws(WireError) -> [UInt8] {
        let length = Int(try readWireInteger(Length.self, field: field))
        guard length <= limit else { throw WireError(.limitExceeded, field: field) }
        return try readWireBytes(length: length, field: field)
    }

    /// UTF-8 text behind a length prefix; invalid UTF-8 is refused, not repaired.
    mutating func readPrefixedString<Length: FixedWidthInteger & UnsignedInteger>(
        _: Length.Type,
        limit: Int,
        field: String
    ) throws(WireError) -> String {
        let bytes = try readPrefixedBytes(Length.self, limit: limit, field: field)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw WireError(.invalidValue, field: field)
        }
        return text
    }

    /// A name from the network (site, app, target, address): UTF-8 without control characters,
    /// so it can be printed anywhere as it is.
    mutating func readPrefixedName<Length: FixedWidthInteger & UnsignedInteger>(
        _: Length.Type,
        limit: Int,
        field: String
    ) throws(WireError) -> String {
        let text = try readPrefixedString(Length.self, limit: limit, field: field)
        guard WireText.isSafe(text) else { throw WireError(.invalidValue, field: field) }
        return text
    }

    @discardableResult
    mutating func writePrefixedBytes<Length: FixedWidthInteger & UnsignedInteger, Bytes: Collection>(
        _: Length.Type,
        _ bytes: Bytes
    ) -> Int where Bytes.Element == UInt8 {
        precondition(bytes.count <= Int(Length.max), "field longer than its length prefix allows")
        return writeInteger(Length(bytes.count)) + writeBytes(bytes)
    }

    @discardableResult
    mutating func writePrefixedString<Length: FixedWidthInteger & UnsignedInteger>(_: Length.Type, _ text: String)
        -> Int
    {
        writePrefixedBytes(Length.self, Array(text.utf8))
    }
}
