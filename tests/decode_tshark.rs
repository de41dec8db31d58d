//! Cross-check with Wireshark: for each fixture, the UDP datagrams the decoder emits
//! (fragmented ones reassembled) are as many as `tshark -Y udp` shows, and the SIP
//! messages it cuts out of TCP streams are the ones tshark's SIP dissector finds.
//!
//! These tests fail, not skip, when tshark is missing: `.ci/run` installs it.

use std::path::PathBuf;
use std::process::Command;

use callwatch::sources::pcap_file::read_captures;
use callwatch::wire::decode::{DecodeLimits, Decoder};
use callwatch::wire::Transport;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/decode")
        .join(name)
}

/// Runs tshark on `file` with `args`; its stdout lines.
fn tshark(file: &PathBuf, args: &[&str]) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("tshark is required for this test (apt-get install tshark): {e}")
        });
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Decodes `file`; the payloads emitted, by transport.
fn ours(file: &PathBuf) -> Vec<(Transport, Vec<u8>)> {
    let mut d = Decoder::new(DecodeLimits::default());
    let mut out = Vec::new();
    let report = read_captures(
        std::slice::from_ref(file),
        &mut |f| {
            d.decode(f.link, f.at, f.data, &mut |g| {
                out.push((g.transport, g.payload.to_vec()))
            })
        },
        &mut |_, _| {},
    );
    assert_eq!(report.exit_code(), 0, "{report}");
    out
}

const UDP_FIXTURES: [&str; 7] = [
    "udp_mix.pcap",
    "udp_mix_ns.pcap",
    "udp_mix_be.pcap",
    "udp_mix.pcapng",
    "two_links.pcapng",
    "sll.pcap",
    "sll2.pcap",
];

#[test]
fn udp_datagrams_match_tshark() {
    for name in UDP_FIXTURES {
        let f = fixture(name);
        let theirs = tshark(&f, &["-Y", "udp"]).len();
        let ours = ours(&f)
            .iter()
            .filter(|(t, _)| *t == Transport::Udp)
            .count();
        assert!(theirs > 0, "{name}: tshark saw no UDP");
        assert_eq!(ours, theirs, "{name}: UDP datagrams, callwatch vs tshark");
    }
}

#[test]
fn reassembled_ipv4_datagrams_match_tshark() {
    for name in ["udp_mix.pcap", "udp_mix.pcapng", "two_links.pcapng"] {
        let f = fixture(name);
        // tshark puts the reassembled datagram in the frame of its last fragment.
        let theirs = tshark(&f, &["-Y", "udp && ip.fragments"]).len();
        let ours = ours(&f)
            .iter()
            .filter(|(t, p)| *t == Transport::Udp && p.len() + 8 > 1480)
            .count();
        assert_eq!(theirs, 2, "{name}: the fixture has two fragmented INVITEs");
        assert_eq!(
            ours, theirs,
            "{name}: reassembled datagrams, callwatch vs tshark"
        );
    }
}

/// The CSeq header values of the messages, in order.
fn cseqs(messages: &[(Transport, Vec<u8>)]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|(_, p)| {
            let text = String::from_utf8_lossy(p);
            text.lines()
                .find_map(|l| l.strip_prefix("CSeq: ").map(str::to_string))
        })
        .collect()
}

#[test]
fn sip_over_tcp_messages_match_tshark() {
    let f = fixture("tcp_sip.pcap");
    let lines = tshark(
        &f,
        &[
            "-o",
            "tcp.reassemble_out_of_order:TRUE",
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.CSeq",
            "-E",
            "occurrence=a",
        ],
    );
    let theirs: Vec<String> = lines
        .iter()
        .flat_map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .collect();
    let ours = ours(&f);
    assert!(ours.iter().all(|(t, _)| *t == Transport::Tcp));
    assert_eq!(cseqs(&ours), theirs);
    assert_eq!(theirs.len(), 7);
}
