extension String {
    /// `host:port`, with an IPv6 host in brackets (`[::1]:4000`), the way addresses are
    /// written in config files, logs and the API.
    public init(host: String, port: some BinaryInteger) {
        self = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
