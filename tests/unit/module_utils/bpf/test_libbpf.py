"""The verifier's rejection, as one line: read from a real libbpf log
(recorded on Debian 12's 6.1 kernel before the fix in mzr_bounds.h)."""
import os

from ansible_collections.mizar.transit.plugins.module_utils.bpf import libbpf

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "verifier-6.1-transit.log")


def test_reason_program_and_source_line_from_a_real_log():
    with open(FIXTURE) as f:
        log = f.read()
    program, reason, insn = libbpf.verifier_reason(log)
    assert program == "mzr_transit"
    assert reason == "math between pkt pointer and register with unbounded min value is not allowed"
    assert insn == "if ((void *)iip + bpf_ntohs(iip->tot_len) > c.end ||"


def test_rejection_message_is_one_line_naming_kernel_host_object_program():
    with open(FIXTURE) as f:
        log = f.read()
    e = libbpf.VerifierRejection("/var/lib/mizar/bpf/transit.bpf.o", -22, log)
    msg = str(e)
    assert "\n" not in msg
    uname = os.uname()
    assert msg == ("the Linux %s verifier on %s rejected program mzr_transit of /var/lib/mizar/bpf/transit.bpf.o: "
                   "math between pkt pointer and register with unbounded min value is not allowed "
                   "(at: if ((void *)iip + bpf_ntohs(iip->tot_len) > c.end ||)" % (uname.release, uname.nodename))
    assert e.log == log and e.errno == 22
    assert isinstance(e, libbpf.BpfError)


def test_a_log_without_verifier_output_gives_libbpfs_last_word():
    log = ("libbpf: map 'mzr_stages': created successfully, fd=6\n"
           "libbpf: failed to find BTF for extern 'bpf_foo'\n")
    assert libbpf.verifier_reason(log) == (None, "libbpf: failed to find BTF for extern 'bpf_foo'", None)
