#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward_fuzz::iv_tag_data(data));
