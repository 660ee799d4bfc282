import Foundation
import Glibc
import Green
import GreenCompare
import GreenHTTP

/// One HTTP client per thread (a client is confined to its hub's thread;
/// its greenlets share it and its kept-alive connections, which close when
/// the thread ends).
enum HTTPClients {
    private static let perThread = PerThread<HTTPClient> {
        var options = HTTPClient.Options()
        options.maxConnectionsPerHost = 10_000
        options.maxIdlePerHost = 10_000
        return HTTPClient(options: options)
    }

    static var current: HTTPClient { perThread.value }
}
