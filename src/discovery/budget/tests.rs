use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limits(per_ip: u32, per_subnet: u32, global: u32) -> IngressLimits {
    IngressLimits {
        packets_per_ip: Some(per_ip),
        packets_per_subnet: Some(per_subnet),
        ingest_budget: Some(global),
        v5_sessions_per_ip: None,
        limit_lan: true,
    }
}

/// Offers `n` datagrams from `from` at `now`; returns how many were taken and the sheds.
fn offer(budget: &mut IngressBudget, now: Instant, from: IpAddr, n: usize) -> (usize, Vec<Shed>) {
    let mut sheds = Vec::new();
    let mut taken = 0;
    for _ in 0..n {
        match budget.admit(now, from) {
            Ok(()) => taken += 1,
            Err(shed) => sheds.push(shed),
        }
    }
    (taken, sheds)
}

#[test]
fn one_ip_gets_its_burst_then_its_rate() {
    let t0 = Instant::now();
    let mut budget = IngressBudget::new(limits(10, 1_000, 10_000), t0);
    let (taken, sheds) = offer(&mut budget, t0, ip("1.2.3.4"), 50);
    assert_eq!(taken, 20, "two seconds' worth at once");
    assert!(sheds.iter().all(|s| *s == Shed::Ip));
    // Half a second later, five more.
    let (taken, _) = offer(&mut budget, t0 + Duration::from_millis(500), ip("1.2.3.4"), 50);
    assert_eq!(taken, 5);
    // Another IP is untouched.
    assert_eq!(offer(&mut budget, t0, ip("1.2.3.5"), 5).0, 5);
}

#[test]
fn a_flooding_subnet_cannot_crowd_out_another() {
    let t0 = Instant::now();
    // 256 hosts of one /24, each under its own rate, together far over the global budget.
    let mut budget = IngressBudget::new(limits(100, 500, 2_000), t0);
    let mut flood_taken = 0;
    let mut sheds = Vec::new();
    for second in 0..5u64 {
        let now = t0 + Duration::from_secs(second);
        for host in 0..=255u8 {
            let (taken, shed) = offer(&mut budget, now, IpAddr::from([203, 0, 113, host]), 50);
            flood_taken += taken;
            sheds.extend(shed);
        }
        // The honest node of another /24 sends its few packets each second: all taken.
        assert_eq!(offer(&mut budget, now, ip("198.51.100.7"), 10).0, 10, "second {second}");
    }
    // The /24 got its burst plus its rate, never the global budget.
    assert!(flood_taken <= 1_000 + 4 * 500, "{flood_taken}");
    assert!(sheds.contains(&Shed::Subnet));
    // IPv6: the /48 is the subnet.
    let mut v6 = IngressBudget::new(limits(100, 50, 2_000), t0);
    let (a, _) = offer(&mut v6, t0, ip("2001:db8:1:1::1"), 80);
    let (b, sheds) = offer(&mut v6, t0, ip("2001:db8:1:2::1"), 80);
    assert_eq!(a + b, 100, "one /48 shares 2 s × 50");
    assert!(sheds.iter().all(|s| *s == Shed::Subnet));
    assert_eq!(offer(&mut v6, t0, ip("2001:db8:2::1"), 10).0, 10, "another /48");
}

#[test]
fn the_global_budget_sheds_when_many_subnets_flood() {
    let t0 = Instant::now();
    let mut budget = IngressBudget::new(limits(1_000, 1_000, 100), t0);
    let mut taken = 0;
    let mut global = 0;
    for net in 0..20u8 {
        let (t, sheds) = offer(&mut budget, t0, IpAddr::from([10 + net, 0, 0, 1]), 50);
        taken += t;
        global += sheds.iter().filter(|s| **s == Shed::Global).count();
    }
    assert_eq!(taken, 200);
    assert_eq!(global, 800);
}

#[test]
fn lan_sources_are_exempt_unless_asked() {
    let t0 = Instant::now();
    let mut exempt = IngressBudget::new(IngressLimits { limit_lan: false, ..limits(1, 1, 1) }, t0);
    assert_eq!(offer(&mut exempt, t0, ip("127.0.0.1"), 100).0, 100);
    assert_eq!(offer(&mut exempt, t0, ip("8.8.8.8"), 100).0, 2);
    let mut strict = IngressBudget::new(limits(1, 1, 1), t0);
    assert_eq!(offer(&mut strict, t0, ip("127.0.0.1"), 100).0, 2);
}

#[test]
fn invalid_budgets_are_refused() {
    assert!(IngressLimits::default().check().is_ok());
    assert!(IngressLimits::unlimited().check().is_ok());
    let zero = IngressLimits { ingest_budget: Some(0), ..IngressLimits::default() };
    assert!(zero.check().unwrap_err().contains("ingest_budget"));
}

#[test]
fn sessions_over_the_cap_are_reported_once_per_window() {
    let t0 = Instant::now();
    let mut cap = SessionCap::new(&IngressLimits {
        v5_sessions_per_ip: Some(3),
        limit_lan: true,
        ..IngressLimits::default()
    });
    let flags: Vec<bool> = (0..6).map(|_| cap.on_session(t0, ip("127.0.5.1"))).collect();
    assert_eq!(flags, [false, false, false, true, false, false]);
    assert!(!cap.on_session(t0, ip("127.0.9.1")), "another IP has its own count");
    // A new window starts the count again.
    let later = t0 + Duration::from_secs(61);
    let flags: Vec<bool> = (0..4).map(|_| cap.on_session(later, ip("127.0.5.1"))).collect();
    assert_eq!(flags, [false, false, false, true]);
    let mut lan_exempt =
        SessionCap::new(&IngressLimits { v5_sessions_per_ip: Some(1), ..IngressLimits::default() });
    assert!((0..5).all(|_| !lan_exempt.on_session(t0, ip("127.0.5.1"))));
}
