//! Updates that arrive by themselves: the gateway follows a feed served on the host, through a
//! network that reaches nothing else. It installs a newer bundle (streamed by RAUC, nothing kept
//! on /data), reboots into it and marks it good; it installs neither an older bundle nor another
//! machine's that the feed passes off as its own. A server that is gone halfway through the
//! fetch, and a power cut during the next one, leave the old slot running and the update
//! installs later.

#![allow(clippy::unwrap_used)] // Helpers of a test: a panic is the failure report.

#[allow(dead_code)] // Each test uses its share of the helpers.
mod common;

use std::time::{Duration, Instant};

use common::{
    BOOT, Feed, boot, first_line, following, marked_good, network_up, on_each_arch, sh,
    update_shows,
};
use daisee_image::Arch;

on_each_arch!(a_newer_bundle_from_the_feed_installs_and_older_or_foreign_ones_do_not);

fn a_newer_bundle_from_the_feed_installs_and_older_or_foreign_ones_do_not(arch: Arch) {
    let feed = Feed::start(arch, "feed");
    let newer = feed.version("newer.raucb");
    feed.offer(&["older.raucb", "foreign.raucb"]);
    let mut m = following(&feed, "feed", arch);
    // The guest reaches the feed's forwarded port, and not the host behind it.
    let reach = |port: &str| format!("timeout 10 bash -c 'echo > /dev/tcp/{port}' && echo reached");
    assert_eq!(first_line(&mut m, &reach("10.0.2.100/80")), "reached");
    let host = format!("10.0.2.2/{}", feed.server.port());
    assert_ne!(first_line(&mut m, &reach(&host)), "reached", "restrict=on");

    // The feed says the foreign bundle is this machine's; RAUC reads its manifest, refuses it.
    let (out, status) = sh(&mut m, "daiseectl update check");
    assert_eq!(
        (out.first().cloned(), status),
        (Some(format!("update available: {newer}")), 0),
        "{out:?}"
    );
    let refused = update_shows(&mut m, "last error", "the bundle is for");
    assert!(refused.contains("this gateway is"), "{refused}");
    let (out, _) = sh(&mut m, "daiseectl update check");
    assert!(
        out.iter()
            .any(|l| l.starts_with("no newer bundle in the feed")),
        "{out:?}"
    );
    assert!(
        feed.server.body_bytes() < feed.size("foreign.raucb") / 10,
        "refused from its manifest, not downloaded: {} bytes",
        feed.server.body_bytes()
    );

    feed.offer(&["older.raucb", "foreign.raucb", "newer.raucb"]);
    let start = Instant::now();
    let (out, _) = sh(&mut m, "daiseectl update check");
    assert_eq!(
        out.first(),
        Some(&format!("update available: {newer}")),
        "{out:?}"
    );
    // Nobody touches the console from here: the gateway installs, reboots and marks B good.
    assert_eq!(boot(&mut m), 'B');
    eprintln!(
        "feed check to B booted: {:.0} s",
        start.elapsed().as_secs_f64()
    );
    marked_good(&mut m, 'B');
    m.wait_until_active("daisee-agent", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));
    update_shows(&mut m, "running", &newer);
    let (out, _) = sh(
        &mut m,
        "ls -A /data/daisee/history/bundles 2>/dev/null | wc -l",
    );
    assert_eq!(
        out.first().map(|l| l.trim()),
        Some("0"),
        "streamed: no copy on /data"
    );
    assert!(
        feed.server
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /newer.raucb bytes=")),
        "RAUC streams by ranges: {:?}",
        feed.server.requests()
    );
}

/// The server cuts its connections halfway through the bundle and answers 404 until it is back.
/// (One that stays unreachable makes RAUC retry each block five times, 1.5 s apart: the same
/// failure, five minutes later; this test took 828 s that way on 2026-12-03.)
#[test]
fn a_server_gone_halfway_and_a_power_cut_during_the_fetch_leave_the_old_slot_running() {
    let arch = Arch::Amd64;
    let feed = Feed::start(arch, "vanish");
    let newer = feed.version("newer.raucb");
    let size = feed.size("newer.raucb");
    feed.offer(&["newer.raucb"]);
    let mut m = following(&feed, "vanish", arch);

    // Halfway through the bundle, the server is gone: RAUC's install fails, A runs on.
    feed.server.withdraw_after(size / 2);
    let (out, _) = sh(&mut m, "daiseectl update check");
    assert_eq!(
        out.first(),
        Some(&format!("update available: {newer}")),
        "{out:?}"
    );
    let failed = update_shows(&mut m, "last error", "");
    assert!(feed.server.vanished(), "{failed}");
    assert_eq!(
        first_line(&mut m, "daiseectl update | head -1"),
        "booted slot A, RAUC idle"
    );
    assert_eq!(m.grubenv().unwrap()["ORDER"], "A B", "B was not activated");
    m.wait_until_active("daisee-agent", BOOT)
        .unwrap_or_else(|e| panic!("{e}"));

    // It is back: the agent tries again by itself (after a minute), and the power goes halfway.
    feed.server.come_back();
    let before = feed.server.body_bytes();
    let deadline = Instant::now() + Duration::from_secs(600);
    while feed.server.body_bytes() < before + size / 3 {
        assert!(Instant::now() < deadline, "the agent did not try again");
        std::thread::sleep(Duration::from_millis(200));
    }
    m.power_cut();
    m.start(&[]).unwrap();
    assert_eq!(boot(&mut m), 'A', "B, half written, is not booted");
    marked_good(&mut m, 'A');
    network_up(&mut m);

    let (out, _) = sh(&mut m, "daiseectl update check");
    assert_eq!(
        out.first(),
        Some(&format!("update available: {newer}")),
        "{out:?}"
    );
    assert_eq!(boot(&mut m), 'B');
    marked_good(&mut m, 'B');
    update_shows(&mut m, "running", &newer);
}
