//! The eclipse attacks of Marcus et al. 2018, Henningsen et al. 2019 and Wang et al. 2026,
//! each against a victim with the default pool and discv4 settings. Each test states the
//! attacker's resources and checks, after the attack and after a restart, that at least a
//! third of the victim's outbound peers are honest and that no /24 holds more than the
//! subnet limit; it prints the figures.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use super::{Attacker, EclipseSim, Share};
use crate::pool::PoolConfig;

/// Honest nodes in the network, each on its own /24.
const HONEST: usize = 80;

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn check(name: &str, when: &str, share: Share, config: &PoolConfig) {
    println!("{name} {when}: {share}");
    assert!(share.outbound >= config.max_outbound_share(), "{name} {when}: too few outbound peers: {share}");
    assert!(
        share.honest_outbound * 3 >= share.outbound,
        "{name} {when}: less than a third of the outbound peers are honest: {share}"
    );
    assert!(share.max_per_subnet <= config.subnet_limit, "{name} {when}: a /24 over the limit: {share}");
}

/// Marcus et al. 2018: two hosts with one IP each and 2,000 node keys ping the victim to
/// fill its table, connect inbound from both hosts every second, and are first in line
/// when the victim restarts.
#[test]
fn marcus_2018_two_hosts_many_ids() {
    let config = PoolConfig::default();
    let attacker = Attacker::new(&[ip(66, 6, 0, 1), ip(66, 6, 1, 1)], 2000);
    let mut sim = EclipseSim::new(HONEST, config.clone(), attacker);
    sim.run(Duration::from_secs(5 * 60), true);
    let share = sim.share();
    check("marcus", "after 5 min of attack", share, &config);
    // The table holds at most 10 nodes per /24 (geth `tableIPLimit`).
    assert!(share.attacker_in_table <= 20, "{share}");
    sim.restart();
    sim.run(Duration::from_secs(5 * 60), true);
    check("marcus", "5 min after a restart", sim.share(), &config);
}

/// Henningsen et al. 2019, "False Friends": two hosts in different /24s with 300 keys
/// attack a long-running victim whose honest peers come and go (2 % leave per minute, half
/// of those gone come back per minute) for two hours; the attacker never leaves and
/// reconnects every second.
#[test]
fn henningsen_2019_false_friends_long_running() {
    let config = PoolConfig::default();
    let attacker = Attacker::new(&[ip(66, 7, 0, 1), ip(66, 7, 200, 1)], 300);
    let mut sim = EclipseSim::new(HONEST, config.clone(), attacker);
    sim.set_churn(0.02, 0.5);
    sim.run(Duration::from_secs(2 * 60 * 60), true);
    check("false friends", "after 2 h of attack", sim.share(), &config);
    sim.restart();
    sim.run(Duration::from_secs(10 * 60), true);
    check("false friends", "10 min after a restart", sim.share(), &config);
}

/// Wang et al. 2026: the attacker sends NEIGHBOURS nobody asked for and PONGs quoting no
/// PING to poison the table, has the DNS tree the victim reads list only its own nodes
/// (400 keys on 40 hosts in 40 /24s: a crawler fooled into listing them), and takes idle
/// inbound slots from every host every second.
#[test]
fn wang_2026_unsolicited_dns_and_inbound() {
    let config = PoolConfig::default();
    let hosts: Vec<IpAddr> = (0..40).map(|i| ip(66, 8, i, 1)).collect();
    let attacker = Attacker::new(&hosts, 400).with_unsolicited();
    let mut sim = EclipseSim::new(HONEST, config.clone(), attacker);
    // DNS answers before discovery has found anyone.
    sim.poison_dns();
    sim.run(Duration::from_secs(10 * 60), true);
    check("wang", "after 10 min of attack", sim.share(), &config);
    sim.restart();
    sim.poison_dns();
    sim.run(Duration::from_secs(10 * 60), true);
    check("wang", "10 min after a restart", sim.share(), &config);
}
