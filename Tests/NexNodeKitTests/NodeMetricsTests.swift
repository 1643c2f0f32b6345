import Prometheus
import Testing
@testable import NexNodeKit

/// A function's series live as long as a trigger of it does: a deployer who deploys and stops
/// functions under ever new names does not grow the node's memory or its scrape.
@Suite struct NodeMetricsTests {
    private static func scrape(_ registry: PrometheusCollectorRegistry) -> String {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func series(_ text: String, _ name: String) -> [Substring] {
        text.split(separator: "\n").filter { $0.hasPrefix("nex_function_trigger{") && $0.contains("workload_name=\"\(name)\"") }
    }

    @Test func aFunctionsSeriesGoWithItsLastTrigger() {
        let registry = PrometheusCollectorRegistry()
        let metrics = NodeMetrics(factory: PrometheusMetricsFactory(registry: registry))
        let first = metrics.function(namespace: "t", name: "fn")
        let replica = metrics.function(namespace: "t", name: "fn")
        let neighbour = metrics.function(namespace: "t", name: "other")
        #expect(first === replica)
        first.succeeded(after: .milliseconds(2))
        replica.failedOnce()
        neighbour.succeeded(after: .milliseconds(1))
        #expect(Self.series(Self.scrape(registry), "fn") == [#"nex_function_trigger{namespace="t",workload_name="fn"} 2"#])

        first.release()  // one trigger left: the series stay
        #expect(Self.series(Self.scrape(registry), "fn").count == 1)
        replica.release()  // none left: gone, the neighbour's kept
        let after = Self.scrape(registry)
        #expect(Self.series(after, "fn").isEmpty)
        #expect(!after.contains(#"workload_name="fn""#))
        #expect(Self.series(after, "other").count == 1)

        // Deployed again, the function counts from zero.
        let again = metrics.function(namespace: "t", name: "fn")
        again.succeeded(after: .milliseconds(1))
        #expect(Self.series(Self.scrape(registry), "fn") == [#"nex_function_trigger{namespace="t",workload_name="fn"} 1"#])
    }

    @Test func cyclingThroughNamesLeavesNoSeries() {
        let registry = PrometheusCollectorRegistry()
        let metrics = NodeMetrics(factory: PrometheusMetricsFactory(registry: registry))
        for index in 0..<500 {
            let function = metrics.function(namespace: "t", name: "fn-\(index)")
            function.succeeded(after: .microseconds(10))
            function.release()
        }
        #expect(!Self.scrape(registry).contains("nex_function"))
    }
}
