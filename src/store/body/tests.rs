use bytes::Bytes;

use super::*;
use crate::test_support::fixtures_dir;

/// The webhook payloads among the fixtures, as the files hold them (full size).
fn payloads() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .filter(|(n, _)| !n.starts_with("reference."))
        .map(|(n, p)| (n, std::fs::read(p).unwrap()))
        .collect();
    out.sort();
    assert!(out.len() >= 10, "fixtures missing: {}", out.len());
    out
}

#[test]
fn every_fixture_round_trips_compressed() {
    for (name, raw) in payloads() {
        let stored = StoredBody::compress(&Bytes::from(raw.clone()));
        assert_eq!(stored.encoding, BodyEncoding::Zstd, "{name}");
        assert!(stored.bytes.len() < raw.len(), "{name}");
        let back = decode(stored.encoding.as_i64(), stored.bytes.to_vec()).unwrap();
        assert_eq!(back, raw, "{name}");
    }
}

#[test]
fn full_size_payloads_shrink_to_under_a_fifth() {
    let (mut raw, mut stored) = (0, 0);
    for (_, body) in payloads().into_iter().filter(|(_, b)| b.len() > 4000) {
        raw += body.len();
        stored += StoredBody::compress(&Bytes::from(body)).bytes.len();
    }
    assert!(stored * 5 < raw, "{stored} of {raw} bytes");
}

#[test]
fn frames_name_the_dictionary_they_were_compressed_with() {
    let id = dictionary_id(DICTIONARIES[0]);
    assert!(
        id >= 32_768,
        "a trained dictionary has a registered-range id: {id}"
    );
    let (_, raw) = &payloads()[0];
    let stored = StoredBody::compress(&Bytes::from(raw.clone()));
    let named = zstd_safe::get_dict_id_from_frame(&stored.bytes).map(|i| i.get());
    assert_eq!(named, Some(id));
}

#[test]
fn a_frame_naming_another_dictionary_is_an_error() {
    // Compressed with a dictionary this build does not have (raw content: the frame names none).
    let (_, raw) = &payloads()[1];
    let mut other = Compressor::with_dictionary(3, b"not our dictionary, raw content").unwrap();
    let frame = other.compress(raw).unwrap();
    let err = decode(1, frame).unwrap_err();
    assert!(matches!(err, BodyError::UnknownDictionary(_)), "{err}");
}

#[test]
fn rows_stored_before_the_migration_read_as_they_are() {
    let (_, raw) = &payloads()[0];
    assert_eq!(decode(0, raw.clone()).unwrap(), *raw);
}

#[test]
fn a_body_that_compression_would_not_shrink_is_kept_raw() {
    let tiny = Bytes::from_static(b"{}");
    let stored = StoredBody::compress(&tiny);
    assert_eq!(stored.encoding, BodyEncoding::Raw);
    assert_eq!(stored.bytes, tiny);
}

#[test]
fn damaged_compressed_bodies_are_errors_never_defaults() {
    let (_, raw) = &payloads()[0];
    let good = StoredBody::compress(&Bytes::from(raw.clone()))
        .bytes
        .to_vec();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a flipped byte", flipped),
        ("cut short", good[..good.len() - 9].to_vec()),
        ("not zstd", raw.clone()),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        assert!(decode(1, bytes).is_err(), "{what} decoded");
    }
    let row = decode_row(7, 9, good).unwrap_err();
    assert_eq!((row.table, row.id, row.field), ("events", 7, "body"));
    assert!(
        row.reason.contains("unknown body encoding 9"),
        "{}",
        row.reason
    );
}

#[test]
fn a_frame_claiming_a_huge_size_is_refused_before_allocating() {
    // A frame header naming our dictionary and declaring 4 GiB of content, then nothing.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0xa3];
    frame.extend_from_slice(&dictionary_id(DICTIONARIES[0]).to_le_bytes());
    frame.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(decode(1, frame), Err(BodyError::BadSize)));
}

#[test]
fn committed_dictionary_is_trained_from_the_fixtures() {
    // scripts/train-dictionary.sh writes it with this same training: retraining the same files
    // must give it back, so the asset is what the script makes from the real payloads.
    let trained = super::train::train(&fixtures_dir()).unwrap();
    assert!(
        trained == PAYLOADS_V1,
        "retrained dictionary differs: run scripts/train-dictionary.sh"
    );
}

#[test]
fn payloads_the_dictionary_never_saw_still_shrink_to_under_a_fifth() {
    // The benchmark compresses the payloads the dictionary was trained on; this keeps the claim
    // honest: each full-size payload compressed with a dictionary trained without it
    // (leave-one-out). `cargo test --lib held_out -- --nocapture` prints the sizes.
    let all = payloads();
    let (mut raw, mut seen, mut held_out) = (0, 0, 0);
    for (name, body) in all.iter().filter(|(_, b)| b.len() > 4000) {
        let others: Vec<_> = super::train::payload_files(&fixtures_dir())
            .into_iter()
            .filter(|p| !p.ends_with(name))
            .collect();
        let dict = super::train::train_files(&others).unwrap();
        let mut c = Compressor::with_dictionary(LEVEL, &dict).unwrap();
        c.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))
            .unwrap();
        let out = c.compress(body).unwrap().len();
        let ours = StoredBody::compress(&Bytes::from(body.clone())).bytes.len();
        println!(
            "held_out {name:<32} {:>6} -> {ours:>5} (trained on it) {out:>5} (held out)",
            body.len()
        );
        (raw, seen, held_out) = (raw + body.len(), seen + ours, held_out + out);
    }
    println!("held_out total {raw} -> {seen} (trained on them) {held_out} (held out)");
    assert!(held_out * 5 < raw, "{held_out} of {raw} bytes");
}
