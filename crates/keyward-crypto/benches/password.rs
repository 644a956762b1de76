//! The cost of one password check (what every userpass login pays, and what bounds a guesser).
#![allow(clippy::unwrap_used)] // a benchmark's setup panics on purpose
use criterion::{criterion_group, criterion_main, Criterion};
use keyward_crypto::{hash_password, verify_password, Key256};

fn password(c: &mut Criterion) {
    let pepper = Key256::generate();
    let hash = hash_password(&pepper, b"correct horse battery").unwrap();
    let mut g = c.benchmark_group("password");
    g.sample_size(20);
    g.bench_function("argon2id m=19MiB t=2 p=1 verify", |b| {
        b.iter(|| verify_password(&pepper, b"correct horse battery", &hash));
    });
    g.finish();
}

criterion_group!(benches, password);
criterion_main!(benches);
