//! The latency tail over time: CONNS closed-loop connections GET a URL with a bearer token for
//! SECS seconds, and every response's latency is recorded in the second it completed. Prints one
//! line per second (requests, p50, p99, p99.9, max in µs, and the size of a file such as the
//! SQLite write-ahead log, if given) and then the whole run's percentiles, so a stall shows as
//! the seconds it happened in — and, beside the log's size, whether checkpoints line up with it.
//!   tail URL TOKEN CONNS SECS [FILE_TO_WATCH]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark tool: a bad argument ends it

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The latency at quantile `q` of sorted samples (µs).
fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: tail URL TOKEN CONNS SECS [FILE_TO_WATCH]");
        std::process::exit(2);
    }
    let (url, token) = (args[1].clone(), args[2].clone());
    let conns: usize = args[3].parse().expect("CONNS");
    let secs: u64 = args[4].parse().expect("SECS");
    let watch = args.get(5).cloned();
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(conns).timeout(Duration::from_secs(30)).build().unwrap();
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let sizes = Arc::new(std::sync::Mutex::new(vec![0u64; secs as usize + 1]));
    if let Some(path) = watch {
        let sizes = sizes.clone();
        tokio::spawn(async move {
            loop {
                let t = start.elapsed().as_secs() as usize;
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                if let Some(slot) = sizes.lock().unwrap().get_mut(t) {
                    *slot = (*slot).max(len);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen: Vec<(u32, u32)> = Vec::new(); // (second, latency µs)
            let mut errors = 0u64;
            while Instant::now() < end {
                let began = Instant::now();
                let ok = match client.get(&url).bearer_auth(&token).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let done = Instant::now();
                if !ok {
                    errors += 1;
                }
                let second = (done - start).as_secs() as u32;
                seen.push((second, (done - began).as_micros().min(u32::MAX as u128) as u32));
            }
            (seen, errors)
        }));
    }
    let mut per_second: Vec<Vec<u32>> = vec![Vec::new(); secs as usize + 1];
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (seen, e) = t.await.unwrap();
        errors += e;
        for (s, l) in seen {
            if let Some(v) = per_second.get_mut(s as usize) {
                v.push(l);
            }
            all.push(l);
        }
    }
    let sizes = sizes.lock().unwrap().clone();
    println!("second,requests,p50_us,p99_us,p999_us,max_us,watched_bytes");
    for (s, v) in per_second.iter_mut().enumerate().take(secs as usize) {
        v.sort_unstable();
        println!(
            "{s},{},{},{},{},{},{}",
            v.len(),
            quantile(v, 0.5),
            quantile(v, 0.99),
            quantile(v, 0.999),
            v.last().copied().unwrap_or(0),
            sizes[s]
        );
    }
    all.sort_unstable();
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "# total {} requests in {elapsed:.1}s ({:.0}/s), errors {errors}; p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
        all.len(),
        all.len() as f64 / elapsed,
        quantile(&all, 0.5),
        quantile(&all, 0.99),
        quantile(&all, 0.999),
        all.last().copied().unwrap_or(0)
    );
}
