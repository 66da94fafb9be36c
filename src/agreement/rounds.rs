//! Explicit rounds for one node in one run, without I/O: OM(m) and SM(m) assume a synchronous
//! system, so a run is m + 1 rounds and the driver opens each one on every participant.
//!
//! Round `r` carries the messages whose path has length `r` (the commander's order in round 1,
//! relays of round `r - 1`'s messages in round `r`). What a node must send in round `r` is
//! queued when it learns it and sent only when the driver opens round `r` ([`Rounds::open`]).
//! Opening round `r` closes every round before it for receiving: a message of a closed round
//! is refused and recorded as late, per sender ([`Rounds::admit`]), so the checker can tell a
//! traitor's missing message (allowed) from a loyal node's late one (the run is void).

use std::collections::BTreeMap;

use super::RunError;

/// Why a message is not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// Its round is already closed here.
    #[error("{}", crate::protocol::ext::late(*round, *current))]
    Late {
        /// The message's round.
        round: usize,
        /// The round this node has opened.
        current: usize,
    },
    /// The sender already had as many messages stored as its budget allows.
    #[error("{sender} used up its budget of {budget} stored messages in this run")]
    Budget {
        /// The sender (the path's last node).
        sender: String,
        /// Messages one sender may have stored in the run.
        budget: u64,
    },
}

/// What one round of sending did, as the node reports it to the driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RoundReport {
    /// Messages the round had to send (before the node's behaviour).
    pub(crate) due: u64,
    /// Messages sent (the behaviour kept them).
    pub(crate) sent: u64,
    /// Sent and stored by the receiver.
    pub(crate) delivered: u64,
    /// Sent and refused (late, rejected) or lost (unreachable receiver, timeout).
    pub(crate) failed: u64,
}

/// One node's rounds of one run; `T` is what the engine queues (a message to send).
#[derive(Debug, Clone)]
pub(crate) struct Rounds<T> {
    rounds: usize,
    /// The highest round opened (0: none yet).
    opened: usize,
    /// `queue[r - 1]`: messages to send when round `r` opens.
    queue: Vec<Vec<T>>,
    /// Per round: what sending did.
    reports: Vec<RoundReport>,
    /// Messages refused as late, by sender.
    late: BTreeMap<String, u64>,
    /// Messages stored per sender, and the most one sender may have stored: a budget per
    /// sender, so that a traitor that floods a run uses up its own share only, never a loyal
    /// node's.
    admitted: BTreeMap<String, u64>,
    budget: u64,
}

impl<T> Rounds<T> {
    /// `rounds` rounds (m + 1), storing at most `budget` messages of each sender.
    pub(crate) fn new(rounds: usize, budget: u64) -> Self {
        Rounds {
            rounds,
            opened: 0,
            queue: (0..rounds).map(|_| Vec::new()).collect(),
            reports: vec![RoundReport::default(); rounds],
            late: BTreeMap::new(),
            admitted: BTreeMap::new(),
            budget,
        }
    }

    /// Whether a message of `round` from `sender` may still be taken: not when its round is
    /// closed here (it is then recorded as late). Checked before anything else about the
    /// message, as the Python stand-in does.
    pub(crate) fn admit(&mut self, round: usize, sender: &str) -> Result<(), Refused> {
        // Opening round r closes rounds before r. After the last round (decide) every round
        // is closed: `opened` is then rounds + 1.
        if round < self.opened {
            *self.late.entry(sender.to_string()).or_default() += 1;
            return Err(Refused::Late {
                round,
                current: self.opened.min(self.rounds),
            });
        }
        Ok(())
    }

    /// Whether one more message of `sender` fits its budget (nothing counted yet).
    pub(crate) fn can_spend(&self, sender: &str) -> Result<(), Refused> {
        match self.admitted.get(sender) {
            Some(&spent) if spent >= self.budget => Err(Refused::Budget {
                sender: sender.to_string(),
                budget: self.budget,
            }),
            _ => Ok(()),
        }
    }

    /// Count one message of `sender` stored, refusing it beyond the sender's budget.
    pub(crate) fn spend(&mut self, sender: &str) -> Result<(), Refused> {
        let spent = self.admitted.entry(sender.to_string()).or_default();
        if *spent >= self.budget {
            return Err(Refused::Budget {
                sender: sender.to_string(),
                budget: self.budget,
            });
        }
        *spent += 1;
        Ok(())
    }

    /// The highest round opened (0 before round 1; past the last once every round closed).
    pub(crate) fn opened(&self) -> usize {
        self.opened
    }

    /// Queue `items` for `round`; beyond the last round they are dropped (nothing is sent
    /// after round m + 1). Returns how many were queued.
    pub(crate) fn queue(&mut self, round: usize, items: Vec<T>) -> usize {
        match self.queue.get_mut(round.wrapping_sub(1)) {
            Some(q) if round > self.opened => {
                let n = items.len();
                q.extend(items);
                n
            }
            // A round already opened (or past the end) no longer sends.
            _ => 0,
        }
    }

    /// Open `round`: close every earlier round and hand out what it must send. Rounds open in
    /// order, each once.
    pub(crate) fn open(&mut self, round: usize) -> Result<Vec<T>, RunError> {
        if round == 0 || round > self.rounds {
            return Err(RunError::NoSuchRound {
                round,
                rounds: self.rounds,
            });
        }
        if round <= self.opened {
            return Err(RunError::RoundRan {
                round,
                opened: self.opened,
            });
        }
        self.opened = round;
        Ok(std::mem::take(&mut self.queue[round - 1]))
    }

    /// Close every round (the run is being decided): later messages are late.
    pub(crate) fn close_all(&mut self) {
        self.opened = self.rounds + 1;
        for q in &mut self.queue {
            q.clear();
        }
    }

    /// Add what sending `round` did.
    pub(crate) fn report(&mut self, round: usize, did: RoundReport) {
        if let Some(r) = self.reports.get_mut(round.wrapping_sub(1)) {
            r.due += did.due;
            r.sent += did.sent;
            r.delivered += did.delivered;
            r.failed += did.failed;
        }
    }

    /// What each round did, rounds 1..=m+1.
    pub(crate) fn reports(&self) -> &[RoundReport] {
        &self.reports
    }

    /// Messages refused as late, by sender.
    pub(crate) fn late(&self) -> &BTreeMap<String, u64> {
        &self.late
    }

    /// Messages queued and not yet sent.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_open_in_order_and_close_the_past() {
        let mut r: Rounds<&str> = Rounds::new(3, 100);
        assert_eq!(r.queue(2, vec!["b1", "b2"]), 2);
        assert_eq!(r.open(1).unwrap(), Vec::<&str>::new());
        // Round 1 is open: its messages and later ones are admitted.
        assert!(r.admit(1, "C").is_ok());
        assert!(r.admit(2, "A").is_ok());
        assert_eq!(r.open(2).unwrap(), ["b1", "b2"]);
        // Round 1 is closed now.
        assert_eq!(
            r.admit(1, "C"),
            Err(Refused::Late {
                round: 1,
                current: 2
            })
        );
        assert!(r.admit(2, "A").is_ok(), "the open round still admits");
        assert!(r.open(2).is_err(), "a round runs once");
        assert!(r.open(1).is_err(), "rounds do not go back");
        // Queueing for an opened round sends nothing.
        assert_eq!(r.queue(2, vec!["x"]), 0);
        assert_eq!(r.queue(3, vec!["c"]), 1);
        r.close_all();
        assert_eq!(r.queued(), 0);
        assert!(matches!(r.admit(3, "B"), Err(Refused::Late { .. })));
        assert_eq!(r.late().get("C"), Some(&1));
        assert_eq!(r.late().get("B"), Some(&1));
    }

    #[test]
    fn rounds_outside_the_run_and_the_budget() {
        let mut r: Rounds<()> = Rounds::new(2, 2);
        assert!(r.open(0).is_err());
        assert!(r.open(3).is_err());
        assert_eq!(
            r.queue(3, vec![()]),
            0,
            "nothing is sent after the last round"
        );
        assert!(r.spend("Q").is_ok());
        assert!(r.spend("Q").is_ok());
        assert_eq!(
            r.spend("Q"),
            Err(Refused::Budget {
                sender: "Q".into(),
                budget: 2
            })
        );
        assert!(r.spend("R").is_ok(), "each sender has its own budget");
        assert!(r.late().is_empty(), "a budget refusal is not lateness");
    }

    #[test]
    fn reports_add_up() {
        let mut r: Rounds<u8> = Rounds::new(2, 10);
        r.queue(1, vec![1, 2, 3]);
        r.open(1).unwrap();
        let did = |due, sent, delivered, failed| RoundReport {
            due,
            sent,
            delivered,
            failed,
        };
        r.report(1, did(2, 2, 1, 1));
        r.report(1, did(1, 1, 1, 0));
        assert_eq!(
            r.reports()[0],
            RoundReport {
                due: 3,
                sent: 3,
                delivered: 2,
                failed: 1
            }
        );
    }
}
