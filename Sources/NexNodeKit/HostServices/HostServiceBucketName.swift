import NexAgentBus
import NexWorkloads
import NATSWire

/// Bucket names of host services: a template with `${namespace}` and `${workload_name}`
/// (placeholders in any case, as Nex 0.2), each replaced by its name **escaped**, so that two
/// different (namespace, workload) pairs never make the same bucket name.
///
/// Nex 0.2 put the names in as they are: `hs_${namespace}_${workload_name}_kv` made
/// `hs_acme_prod_cache_kv` for both `acme_prod`/`cache` and `acme`/`prod_cache`. Escaping:
///
/// - ASCII letters and digits stay as they are (`team`/`echo` is still `hs_team_echo_kv`);
/// - `-` becomes `--`;
/// - every other byte of the UTF-8 name becomes `-` and two upper-case hex digits (`_` is `-5F`,
///   `.` is `-2E`).
///
/// An escaped name is made of letters, digits and `-` only, and it decodes back unambiguously
/// (`--` or `-HH`). A template must hold each placeholder exactly once with a `_` in the text
/// between them: the first `_` after the first placeholder then marks where its escaped name
/// ends, so the whole name determines both names (``problem(with:)`` refuses other templates).
enum HostServiceBucketName {
    static let namespacePlaceholder = "${namespace}"
    static let workloadPlaceholder = "${workload_name}"

    /// The bucket name for one workload: the template with both placeholders replaced by the
    /// escaped names.
    static func render(_ template: String, namespace: String, workloadName: String) -> String {
        substitute(template, namespace: escape(namespace), workloadName: escape(workloadName))
    }

    /// `name` in the bucket-name alphabet, injectively (see the type's description).
    static func escape(_ name: String) -> String {
        var escaped = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                escaped.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "-"):
                escaped += "--"
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                escaped.unicodeScalars.append("-")
                escaped.unicodeScalars.append(hex[Int(byte >> 4)])
                escaped.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return escaped
    }

    /// Why `template` cannot name buckets (nil: it can): it must give a valid bucket name and
    /// keep the names of different workloads apart.
    static func problem(with template: String) -> String? {
        let lowered = template.lowercased()
        func occurrences(_ placeholder: String) -> Int {
            lowered.components(separatedBy: placeholder).count - 1
        }
        guard occurrences(namespacePlaceholder) == 1, occurrences(workloadPlaceholder) == 1 else {
            return "must hold ${namespace} and ${workload_name} once each (buckets are per workload)"
        }
        // The text between the two placeholders, with a sentinel in place of each.
        let marked = substitute(template, namespace: "\u{1}", workloadName: "\u{1}")
        let between = marked.split(separator: "\u{1}", omittingEmptySubsequences: false)[1]
        guard between.contains("_") else {
            return "must have a '_' between ${namespace} and ${workload_name} (escaped names never contain one)"
        }
        guard isValid(substitute(template, namespace: "ns", workloadName: "wl")) else {
            return "does not make a bucket name (letters, digits, '-', '_' and ${namespace}, ${workload_name})"
        }
        return nil
    }

    /// JetStream bucket names: letters, digits, `-` and `_`.
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(NATSSubject.isNameByte)
    }

    /// Replaces the placeholders, ignoring their case, by the given texts as they are.
    private static func substitute(_ template: String, namespace: String, workloadName: String) -> String {
        var result = ""
        var rest = Substring(template)
        while let start = rest.firstIndex(of: "$") {
            result += rest[..<start]
            let candidate = rest[start...]
            if candidate.lowercased().hasPrefix(namespacePlaceholder) {
                result += namespace
                rest = candidate.dropFirst(namespacePlaceholder.count)
            } else if candidate.lowercased().hasPrefix(workloadPlaceholder) {
                result += workloadName
                rest = candidate.dropFirst(workloadPlaceholder.count)
            } else {
                result += "$"
                rest = candidate.dropFirst()
            }
        }
        return result + rest
    }
}
