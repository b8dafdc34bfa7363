"""cgroup v2 device access control: a BPF_PROG_TYPE_CGROUP_DEVICE program built from the rules."""
from runtime.errors import Error


def apply(cgroup_dir, rules):
    """Attach a device filter for `rules` (ordered OCI device rules) to cgroup_dir."""
    raise Error("linux.resources.devices: cgroup v2 device filtering is not implemented yet")
