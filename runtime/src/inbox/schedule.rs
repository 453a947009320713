//! When a failed delivery runs again.

use std::time::Duration;

/// The delays between a delivery's attempts, with jitter: the first attempt runs at
/// once, attempt `n + 1` runs `delays[n - 1]` after attempt `n` failed, and after the
/// last one the delivery is dead-lettered. So a schedule of `k` delays makes `k + 1`
/// attempts.
///
/// The default is the Standard Webhooks schedule: at once, then 5 s, 5 min, 30 min,
/// 2 h, 5 h, 10 h and 10 h later (8 attempts over about 27.6 hours), each delay moved
/// by up to ±20 % at random so that failures do not retry in lockstep.
///
/// ```
/// use std::time::Duration;
/// use hookroute_runtime::inbox::RetrySchedule;
///
/// let schedule = RetrySchedule::standard();
/// assert_eq!(schedule.attempts(), 8);
///
/// let quick = RetrySchedule::new([100, 200, 400].map(Duration::from_millis)).jitter(0.0);
/// assert_eq!(quick.attempts(), 4);
/// assert_eq!(quick.delay_after(1), Some(Duration::from_millis(100)));
/// assert_eq!(quick.delay_after(3), Some(Duration::from_millis(400)));
/// assert_eq!(quick.delay_after(4), None); // dead-lettered
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::standard()
    }
}

impl RetrySchedule {
    /// The Standard Webhooks schedule (see the type's docs), with ±20 % jitter.
    pub fn standard() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        Self::new([5, 5 * MIN, 30 * MIN, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR].map(Duration::from_secs))
    }

    /// The given delays between attempts, with ±20 % jitter. No delays: one attempt,
    /// then the dead letters.
    pub fn new(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self { delays: delays.into_iter().collect(), jitter: 0.2 }
    }

    /// Reads a comma-separated list of milliseconds (`100,200,400`), as examples take
    /// it from the environment.
    pub fn from_millis_list(list: &str) -> Result<Self, String> {
        let delays = list
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| format!("`{part}` is not a number of milliseconds"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(delays))
    }

    /// Moves each delay by up to `fraction` of itself, up or down, at random (0.2 by
    /// default; clamped to 0..=1; 0 for exact delays).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        self
    }

    /// How many attempts a delivery gets: one more than the delays.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX - 1).saturating_add(1)
    }

    /// The delays, without jitter.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How long after failed attempt `attempt` (1 for the first) the next one runs,
    /// jitter applied; `None` when that was the last attempt.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        let delay = *self.delays.get(index)?;
        if self.jitter == 0.0 {
            return Some(delay);
        }
        let factor = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        Some(delay.mul_f64(factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_schedule_is_eight_attempts_over_a_day_and_a_bit() {
        let schedule = RetrySchedule::standard().jitter(0.0);
        assert_eq!(schedule.attempts(), 8);
        let total: Duration = (1..8).filter_map(|n| schedule.delay_after(n)).sum();
        assert_eq!(total, Duration::from_secs(5 + 5 * 60 + 30 * 60 + (2 + 5 + 10 + 10) * 3600));
        assert_eq!(schedule.delay_after(0), None);
        assert_eq!(schedule.delay_after(8), None);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let schedule = RetrySchedule::new([Duration::from_secs(100)]);
        for _ in 0..1000 {
            let delay = schedule.delay_after(1).unwrap();
            assert!((Duration::from_secs(80)..=Duration::from_secs(120)).contains(&delay), "{delay:?}");
        }
    }

    #[test]
    fn a_list_of_millis_reads_or_says_what_is_wrong() {
        let schedule = RetrySchedule::from_millis_list("100, 200,400").unwrap();
        assert_eq!(schedule.delays(), [100, 200, 400].map(Duration::from_millis));
        assert!(RetrySchedule::from_millis_list("100,soon").unwrap_err().contains("`soon`"));
        assert_eq!(RetrySchedule::from_millis_list("").unwrap().attempts(), 1);
    }
}
