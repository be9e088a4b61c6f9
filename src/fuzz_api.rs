//! Entry points for the property tests and the fuzz targets (`fuzz/`): each hands arbitrary bytes to one parser
//! of input parlab does not control (a lesson file, the lab's frame stream, the progress file) and checks what
//! must hold whatever the bytes: an error comes back, never a panic, and what parses is sound. Imports the three
//! parsers only.

use std::io::Cursor;

/// A lesson file of arbitrary text, loaded as `lint` loads one: it is a lesson or a broken file with errors.
pub fn lesson_file(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let set = crate::lesson::LessonSet::from_texts(vec![("fuzz.md".to_string(), text)]);
    assert_eq!(set.lessons.len() + set.broken.len(), 1, "one file is one lesson or one broken file");
    for b in &set.broken {
        assert!(!b.errors.is_empty(), "a broken file says why");
    }
}

/// A stream of frames as the lab's reader sees it: every frame decodes to an event or is refused, and the reader
/// stops at the first bad one. Frame lengths above `max_len` are refused before reading (a caller that feeds
/// random bytes bounds what a header may make the reader reserve).
pub fn frame_stream(bytes: &[u8], max_len: usize) {
    let mut r = Cursor::new(bytes);
    let mut body = Vec::new();
    loop {
        let at = r.position() as usize;
        if let Some(head) = bytes.get(at..at + 4) {
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if len > max_len {
                return;
            }
        }
        match crate::wire::read_frame(&mut r, &mut body) {
            Ok(Some(tag)) => {
                if let Ok(crate::timeline::LabEvent::Span(s)) = crate::wire::decode_event(tag, &body) {
                    // A span read back is written back the same.
                    let mut again = Vec::new();
                    crate::wire::write_span(&mut again, &s).expect("writing to a Vec");
                    let mut rr = Cursor::new(&again[..]);
                    let tag = crate::wire::read_frame(&mut rr, &mut body).expect("a frame").expect("one frame");
                    assert!(
                        matches!(crate::wire::decode_event(tag, &body), Ok(crate::timeline::LabEvent::Span(t)) if t == s)
                    );
                }
                // A worker's span fields, read from the same body (the lab reads these from worker frames).
                let mut w = crate::wire::Reader::new(&body);
                let _ = crate::wire::get_worker_span(&mut w, 0);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// A progress file of arbitrary bytes: parsed as this format, a newer one, or damaged, never a panic; what
/// parses holds only values in range.
pub fn progress_file(bytes: &[u8]) {
    match crate::progress::parse(bytes) {
        crate::progress::Parsed::Current(data, _) | crate::progress::Parsed::Newer(_, data) => {
            let mut again = data.clone();
            assert!(again.drop_out_of_range().is_empty(), "parsed progress holds only values in range");
        }
        crate::progress::Parsed::Damaged(why) => assert!(!why.is_empty(), "damage is explained"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn config() -> ProptestConfig {
        // Bounded: the six properties together take about a second on 2 busy cores.
        ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() }
    }

    /// Text shaped like a lesson: front matter and fenced blocks made of the pieces parsers trip on.
    fn lesson_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("+++\n".to_string()),
            Just("id = \"x\"\ntitle = \"T\"\nminutes = 3\n".to_string()),
            Just("```experiment\n".to_string()),
            Just("```quiz\n".to_string()),
            Just("```exercise\n".to_string()),
            Just("```\n".to_string()),
            Just("## A section\n".to_string()),
            Just("workload = \"fib:30\"\ntasks = 4\nmodes = [\"sequential\", \"threads\"]\n".to_string()),
            Just("question = \"?\"\nchoices = [\"a\", \"b\"]\nanswer = 7\nwhy = \"\"\n".to_string()),
            Just("demo = \"cow\"\n".to_string()),
            "[ -~]{0,40}\n",
            "\\PC{0,20}",
        ];
        prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_bytes_as_a_lesson_file_load_or_are_reported(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            lesson_file(&bytes);
        }

        #[test]
        fn lesson_shaped_text_loads_or_is_reported(text in lesson_like()) {
            lesson_file(text.as_bytes());
        }

        #[test]
        fn any_frame_stream_decodes_or_stops(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            frame_stream(&bytes, 1 << 20);
        }

        #[test]
        fn frames_with_plausible_lengths_decode_or_stop(
            frames in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)), 0..8)
        ) {
            let mut bytes = Vec::new();
            for (tag, body) in frames {
                bytes.extend_from_slice(&((body.len() + 1) as u32).to_le_bytes());
                bytes.push(tag % 4);
                bytes.extend_from_slice(&body);
            }
            frame_stream(&bytes, 1 << 20);
        }

        #[test]
        fn any_bytes_as_a_progress_file_parse_or_are_damaged(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            progress_file(&bytes);
        }

        #[test]
        fn progress_shaped_json_parses_or_is_damaged(
            version in 0u64..4,
            section in any::<i64>(),
            quiz in any::<u64>(),
            hints in any::<i64>(),
        ) {
            let text = format!(
                r#"{{"version":{version},"lessons":{{"gil":{{"section":{section},"done":true,"quizzes":{{"{quiz}":1}}}}}},"exercises":{{"e":{{"hints":{hints}}}}}}}"#
            );
            progress_file(text.as_bytes());
        }
    }
}
