//! Seal and open of secret blobs on the production path (a cached data key, the real blob
//! format and AAD), at 64 B, 1 KiB and 16 KiB. `bench/run.sh` sets these beside
//! `openssl speed -evp aes-256-gcm` on the same machine.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keyward_crypto::{open_secret_blob, seal_secret_blob, BlobContext, Key256};

fn seal_open(c: &mut Criterion) {
    let key = Key256::generate();
    let ctx = BlobContext { mount: [1; 16], secret: [2; 16], version: 3 };
    let mut group = c.benchmark_group("blob");
    for size in [64usize, 1024, 16 * 1024] {
        let plain = vec![0x5a_u8; size];
        let sealed = seal_secret_blob(&key, 1, &ctx, &plain);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &plain, |b, p| {
            b.iter(|| seal_secret_blob(&key, 1, &ctx, p))
        });
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| open_secret_blob(&key, &ctx, s))
        });
        group.bench_with_input(BenchmarkId::new("seal_open", size), &plain, |b, p| {
            b.iter(|| open_secret_blob(&key, &ctx, &seal_secret_blob(&key, 1, &ctx, p)))
        });
    }
    group.finish();
}

criterion_group!(benches, seal_open);
criterion_main!(benches);
