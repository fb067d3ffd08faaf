use std::io::Write;
use std::process::{Command, Stdio};

use super::*;

fn octal_field(header: &[u8], at: usize, len: usize) -> u64 {
    let text = std::str::from_utf8(&header[at..at + len]).expect("ascii");
    u64::from_str_radix(text.trim_matches(|c| c == '\0' || c == ' '), 8).expect("octal")
}

#[test]
fn archive_is_one_header_the_padded_content_and_two_zero_blocks() {
    let tar = archive("pause", b"hello\n");
    assert_eq!(tar.len(), 512 + 512 + 1024);
    assert_eq!(&tar[512..518], b"hello\n");
    assert!(tar[518..].iter().all(|&b| b == 0));
}

#[test]
fn archive_header_has_the_exact_ustar_fields() {
    let tar = archive("pause", b"hello\n");
    let h = &tar[..512];
    let mut expected = [0u8; 512];
    let fields: [(usize, &[u8]); 12] = [
        (0, b"pause"),
        (100, b"0000755\0"),
        (108, b"0000000\0"),
        (116, b"0000000\0"),
        (124, b"00000000006\0"),
        (136, b"00000000000\0"),
        (148, b"010614\0 "),
        (156, b"0"),
        (257, b"ustar\0"),
        (263, b"00"),
        (265, b"root"),
        (297, b"root"),
    ];
    for (at, field) in fields {
        expected[at..at + field.len()].copy_from_slice(field);
    }
    assert_eq!(h, expected);
    // The checksum: the sum of all header bytes with the checksum field read as spaces.
    let mut blanked = h.to_vec();
    blanked[148..156].copy_from_slice(b"        ");
    let sum: u64 = blanked.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(octal_field(h, 148, 8), sum);
}

#[test]
fn archive_of_a_whole_block_adds_no_padding_block() {
    assert_eq!(archive("pause", &[7; 512]).len(), 512 + 512 + 1024);
    assert_eq!(archive("pause", &[7; 513]).len(), 512 + 1024 + 1024);
}

/// GNU tar (on every Debian) reads the archive as one executable root-owned file.
#[test]
fn system_tar_lists_the_holder_as_executable_and_root_owned() {
    let binary = PauseArch::X86_64.binary();
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "-tvf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar is installed");
    tar.stdin
        .take()
        .expect("piped stdin")
        .write_all(&archive(PATH_IN_IMAGE, &binary))
        .expect("write to tar");
    let out = tar.wait_with_output().expect("tar ends");
    assert!(out.status.success(), "{out:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(fields[0], "-rwxr-xr-x");
    assert_eq!(fields[1], "0/0");
    assert_eq!(fields[2], binary.len().to_string());
    assert_eq!(fields.last(), Some(&"pause"));
}

#[test]
fn pause_image_is_a_local_name_with_a_twelve_digit_hex_tag() {
    let image = pause_image();
    let tag = image.strip_prefix("berth/pause:").expect("repository");
    assert_eq!(tag.len(), 12);
    assert!(tag
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    // No registry host (a first component with '.' or ':' or "localhost").
    let first = image.split('/').next().unwrap_or_default();
    assert!(!first.contains('.') && !first.contains(':') && first != "localhost");
    assert_eq!(pause_image(), image, "the same on every call");
}

#[test]
fn tag_changes_when_any_binary_changes() {
    let binaries: Vec<_> = PauseArch::ALL
        .iter()
        .map(|a| (a.name(), a.binary()))
        .collect();
    let tag = tag_for(&binaries);
    assert_eq!(pause_image(), format!("berth/pause:{tag}"));
    for i in 0..binaries.len() {
        let mut changed = binaries.clone();
        let last = changed[i].1.len() - 1;
        changed[i].1[last] ^= 1;
        assert_ne!(tag_for(&changed), tag, "{} changed", binaries[i].0);
    }
}

#[test]
fn unknown_architecture_is_an_error_naming_host_and_architecture() {
    assert_eq!(
        binary_for("edge-1", "x86_64").ok(),
        Some(PauseArch::X86_64.binary())
    );
    let err = binary_for("edge-1", "riscv64").expect_err("no riscv64 binary");
    assert!(matches!(err, DockerError::UnsupportedArchitecture { .. }));
    assert_eq!(
        err.to_string(),
        "host edge-1: berth has no pod holder binary for architecture 'riscv64' \
         (it carries x86_64, aarch64)"
    );
    assert!(!err.is_unreachable());
}
