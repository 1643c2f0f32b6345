/// Node configuration files used by several test targets.
public enum NodeConfigurationSamples {
    /// A Nex 0.2 node config as its `nex node preflight --init` writes one (Firecracker keys
    /// included), with `v8` and `wasm` enabled.
    public static let nex02 = """
        {
          "default_resource_dir": "/tmp/wd",
          "kernel_filepath": "/tmp/wd/vmlinux",
          "rootfs_filepath": "/tmp/wd/rootfs.ext4",
          "machine_pool_size": 1,
          "cni": {"network_name": "fcnet", "interface_name": "veth0", "subnet": "10.10.10.0/24"},
          "machine_template": {"vcpu_count": 1, "memsize_mib": 256},
          "internal_node_host": "10.10.10.1",
          "rate_limiters": {"bandwidth": {"one_time_burst": 0, "refill_time": 0, "size": 0}},
          "tags": {"simple": "true"},
          "workload_types": ["native", "v8", "wasm"]
        }
        """
}
