//! Capture files through `sources::pcap_file` and `wire::decode`: pcap in both byte
//! orders and both resolutions, pcapng with several interfaces, damaged files and
//! several files merged by time. Fixtures come from `tests/data/decode/make.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use callwatch::sources::pcap_file::{read_captures, CaptureReport, CutShort, FileOutcome};
use callwatch::time::CaptureTime;
use callwatch::wire::decode::{DecodeErrorKind, DecodeLimits, Decoder, LinkType};
use callwatch::wire::Transport;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/decode")
        .join(name)
}

fn expected(key: &str) -> u64 {
    let text = std::fs::read_to_string(fixture("expected.txt")).expect("expected.txt");
    let map: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    map.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} missing from expected.txt"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    at: CaptureTime,
    link: LinkType,
    data: Vec<u8>,
    file: usize,
}

fn read(names: &[&str]) -> (Vec<Got>, CaptureReport, Vec<(u64, u64)>) {
    let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    let mut frames = Vec::new();
    let mut progress = Vec::new();
    let report = read_captures(
        &paths,
        &mut |f| {
            frames.push(Got {
                at: f.at,
                link: f.link,
                data: f.data.to_vec(),
                file: f.file,
            })
        },
        &mut |done, total| progress.push((done, total)),
    );
    (frames, report, progress)
}

/// Everything the decoder emits for these frames: (transport, payload).
fn decode(frames: &[Got]) -> (Vec<(Transport, Vec<u8>)>, Decoder) {
    let mut d = Decoder::new(DecodeLimits::default());
    let mut out = Vec::new();
    for f in frames {
        d.decode(f.link, f.at, &f.data, &mut |g| {
            out.push((g.transport, g.payload.to_vec()))
        });
    }
    (out, d)
}

fn file_size(name: &str) -> u64 {
    std::fs::metadata(fixture(name)).expect("fixture").len()
}

#[test]
fn pcap_is_read_to_the_end_and_decoded() {
    let (frames, report, progress) = read(&["udp_mix.pcap"]);
    let n = expected("udp_mix.frames");
    assert_eq!(
        report.files[0].1,
        FileOutcome::Complete {
            frames: n,
            bytes: file_size("udp_mix.pcap")
        }
    );
    assert_eq!(report.exit_code(), 0);
    assert!(report.messages().is_empty());
    assert_eq!(frames.len() as u64, n);
    assert!(frames.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(
        frames[0].at,
        CaptureTime::from_secs_micros(1_764_120_902, 0)
    );
    assert_eq!(
        progress.last(),
        Some(&(file_size("udp_mix.pcap"), file_size("udp_mix.pcap")))
    );

    let (out, d) = decode(&frames);
    assert_eq!(out.len() as u64, expected("udp_mix.udp_datagrams"));
    assert!(out.iter().all(|(t, _)| *t == Transport::Udp));
    // The two fragmented INVITEs come out whole, once each.
    for call in ["fixture-2@10.1.2.3", "fixture-3@10.1.2.3"] {
        let whole: Vec<_> = out
            .iter()
            .filter(|(_, p)| p.windows(call.len()).any(|w| w == call.as_bytes()))
            .collect();
        assert_eq!(whole.len(), 1, "{call}");
        let p = &whole[0].1;
        assert!(p.len() > 2 * 1472, "{call} reassembled: {} bytes", p.len());
        assert!(p.ends_with(b"\r\n"));
    }
    assert_eq!(
        d.counters().get(DecodeErrorKind::UnsupportedEthertype),
        1,
        "the ARP"
    );
    assert_eq!(d.counters().total(), 1);
}

#[test]
fn pcapng_nanosecond_and_big_endian_files_give_the_same_frames() {
    let (reference, _, _) = read(&["udp_mix.pcap"]);
    for name in ["udp_mix.pcapng", "udp_mix_ns.pcap", "udp_mix_be.pcap"] {
        let (frames, report, _) = read(&[name]);
        assert_eq!(report.exit_code(), 0, "{name}: {report}");
        assert_eq!(frames, reference, "{name}");
    }
}

#[test]
fn pcapng_interfaces_keep_their_own_link_type_and_resolution() {
    let (frames, report, _) = read(&["two_links.pcapng"]);
    assert_eq!(report.exit_code(), 0, "{report}");
    assert_eq!(report.files[0].1.frames(), expected("two_links.frames"));
    assert_eq!(report.unsupported_links.len(), 1);
    assert_eq!(report.unsupported_links[0].linktype, 147);
    assert_eq!(report.unsupported_links[0].frames, 3);
    assert_eq!(report.skipped_frames(), 3);
    assert!(report.messages()[0].contains("unsupported link type 147"));

    let eth = frames
        .iter()
        .filter(|f| f.link == LinkType::Ethernet)
        .count();
    let sll2: Vec<_> = frames
        .iter()
        .filter(|f| f.link == LinkType::LinuxSll2)
        .collect();
    assert_eq!(eth as u64, expected("udp_mix.frames"));
    assert_eq!(sll2.len(), 3);
    // The SLL2 interface is in microseconds, the Ethernet one in nanoseconds (floored).
    assert_eq!(
        sll2[0].at,
        CaptureTime::from_secs_micros(1_764_120_902, 2_500)
    );
    let (reference, _, _) = read(&["udp_mix.pcap"]);
    let eth_times: Vec<_> = frames
        .iter()
        .filter(|f| f.link == LinkType::Ethernet)
        .map(|f| f.at)
        .collect();
    let ref_times: Vec<_> = reference.iter().map(|f| f.at).collect();
    assert_eq!(eth_times, ref_times);

    let (out, _) = decode(&frames);
    assert_eq!(out.len() as u64, expected("udp_mix.udp_datagrams") + 3);
}

#[test]
fn linux_cooked_captures_decode() {
    for name in ["sll.pcap", "sll2.pcap"] {
        let (frames, report, _) = read(&[name]);
        assert_eq!(report.exit_code(), 0, "{report}");
        let (out, d) = decode(&frames);
        assert_eq!(out.len(), 3, "{name}");
        assert!(out
            .iter()
            .all(|(_, p)| p.starts_with(b"SIP/2.0 200 OK\r\n")));
        assert_eq!(d.counters().total(), 0, "{name}");
    }
}

#[test]
fn sip_over_tcp_comes_out_one_message_at_a_time() {
    let (frames, report, _) = read(&["tcp_sip.pcap"]);
    assert_eq!(report.exit_code(), 0);
    let (out, d) = decode(&frames);
    let want_text = std::fs::read(fixture("tcp_sip.messages")).expect("messages");
    let want: Vec<&[u8]> = want_text.split(|&b| b == 0).collect();
    assert_eq!(want.len() as u64, expected("tcp_sip.sip_messages"));
    let got: Vec<&[u8]> = out.iter().map(|(_, p)| p.as_slice()).collect();
    assert_eq!(got, want);
    assert!(out.iter().all(|(t, _)| *t == Transport::Tcp));
    assert_eq!(d.counters().total(), 0);
    assert_eq!(d.memory().tcp_streams, 0, "both directions closed by FIN");
}

#[test]
fn truncated_file_names_the_offset_and_keeps_the_frames_before() {
    for (name, what) in [
        ("truncated_data.pcap", CutShort::RecordData),
        ("truncated_header.pcap", CutShort::RecordHeader),
    ] {
        let stem = name.trim_end_matches(".pcap");
        let (frames, report, _) = read(&[name]);
        let n = expected(&format!("{stem}.frames"));
        let offset = expected(&format!("{stem}.offset"));
        assert_eq!(
            report.files[0].1,
            FileOutcome::Truncated {
                frames: n,
                offset,
                what
            }
        );
        assert_eq!(frames.len() as u64, n);
        assert_eq!(report.exit_code(), 1);
        let msg = &report.messages()[0];
        assert!(msg.contains(name), "{msg}");
        assert!(
            msg.contains(&format!("truncated at byte {offset} ({})", what.as_str())),
            "{msg}"
        );
        assert!(msg.ends_with(&format!("{n} frames read before")), "{msg}");
    }
}

#[test]
fn corrupt_record_length_is_corrupt_not_truncated() {
    let (frames, report, _) = read(&["corrupt.pcap"]);
    match &report.files[0].1 {
        FileOutcome::Corrupt {
            frames: n, offset, ..
        } => {
            assert_eq!(*n, expected("corrupt.frames"));
            assert_eq!(*offset, expected("corrupt.offset"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(frames.len() as u64, expected("corrupt.frames"));
    assert_eq!(report.exit_code(), 1);
    assert!(report.messages()[0].contains("corrupt at byte"));
}

#[test]
fn files_that_are_not_captures() {
    let missing = "no_such_file.pcap";
    let (frames, report, _) = read(&["not_a_capture.txt", missing]);
    assert!(frames.is_empty());
    assert!(matches!(report.files[0].1, FileOutcome::NotACapture { .. }));
    assert!(matches!(report.files[1].1, FileOutcome::Io { .. }));
    assert_eq!(report.exit_code(), 2);
    let msgs = report.messages();
    assert!(
        msgs[0].contains("not_a_capture.txt: not a capture file"),
        "{msgs:?}"
    );
    assert!(msgs[1].contains(missing), "{msgs:?}");

    let dir = std::env::temp_dir().join(format!("callwatch-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let gz = dir.join("c.pcap.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).expect("write");
    let short = dir.join("short.pcap");
    std::fs::write(&short, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]).expect("write");
    let report = read_captures(&[empty, gz, short], &mut |_| {}, &mut |_, _| {});
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(&report.files[0].1, FileOutcome::NotACapture { reason } if reason == "empty file")
    );
    assert!(
        matches!(&report.files[1].1, FileOutcome::NotACapture { reason } if reason.contains("gzip"))
    );
    assert_eq!(
        report.files[2].1,
        FileOutcome::Truncated {
            frames: 0,
            offset: 0,
            what: CutShort::FileHeader
        }
    );
}

fn payload_tag(f: &Got) -> String {
    // Ethernet 14 + IPv4 20 + UDP 8
    String::from_utf8_lossy(&f.data[42..]).into_owned()
}

#[test]
fn two_files_are_merged_by_time_with_file_order_breaking_ties() {
    let (frames, report, progress) = read(&["merge_a.pcap", "merge_b.pcap"]);
    assert_eq!(report.exit_code(), 0);
    let tags: Vec<String> = frames.iter().map(payload_tag).collect();
    assert_eq!(tags, ["a0", "b0", "a1", "b1", "b2", "a2", "a3", "a4", "b3"]);
    let files: Vec<usize> = frames.iter().map(|f| f.file).collect();
    assert_eq!(files, [0, 1, 0, 1, 1, 0, 0, 0, 1]);
    let total = file_size("merge_a.pcap") + file_size("merge_b.pcap");
    assert_eq!(progress.first(), Some(&(0, total)));
    assert_eq!(progress.last(), Some(&(total, total)));

    let (frames, _, _) = read(&["merge_b.pcap", "merge_a.pcap"]);
    let tags: Vec<String> = frames.iter().map(payload_tag).collect();
    assert_eq!(tags, ["a0", "b0", "b1", "a1", "b2", "a2", "a3", "a4", "b3"]);
}

#[test]
fn a_damaged_file_in_a_merge_does_not_stop_the_others() {
    let (frames, report, _) = read(&["merge_a.pcap", "truncated_data.pcap", "not_a_capture.txt"]);
    assert_eq!(frames.len() as u64, 5 + expected("truncated_data.frames"));
    assert!(frames.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(matches!(
        report.files[0].1,
        FileOutcome::Complete { frames: 5, .. }
    ));
    assert!(matches!(report.files[1].1, FileOutcome::Truncated { .. }));
    assert!(matches!(report.files[2].1, FileOutcome::NotACapture { .. }));
    assert_eq!(report.exit_code(), 2);
    assert_eq!(report.messages().len(), 2);
}
