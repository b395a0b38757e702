//! The scheduler: a queue over a graph of nodes that knows nothing of kinds or HTTP.
//!
//! It owns what every walk shares: which nodes are ready (everything they wait for is done
//! and did not block), the parallelism bound, the order ready nodes start in (longest
//! remaining path first, or shortest, or declaration order), what a blocking node does to
//! the nodes waiting on it, and cancellation. What starting a node means — the request, the
//! outcome — belongs to a [`Driver`].
//!
//! Lifecycle of one [`Schedule::run`]:
//! 1. every ready node, in priority order, is handed to [`Driver::launch`] while there is
//!    room and the run is not cancelled; the driver settles it at once (a no-op, a refusal)
//!    or spawns its work on the [`Tasks`] it is given;
//! 2. when nothing runs and nothing is ready, nodes that wait on a blocking node are
//!    settled through [`Driver::blocked`] (one pass at a time, in index order, until none is
//!    left), and the run ends when no pass changes anything;
//! 3. otherwise the coordinator waits for one task and hands its result to
//!    [`Driver::land`];
//! 4. once cancelled, nothing new starts; tasks in flight finish, and every node that never
//!    started goes to [`Driver::cancelled`].
//!
//! The loop never exits early on a failure: independent branches carry on, and every node
//! ends settled, blocked or cancelled.
//!
//! Imports: tokio only. No I/O. Deterministic for a deterministic driver.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinSet;

/// A cancellation token: the CLI cancels it (Ctrl-C, `--timeout`); walks start nothing new
/// once it is set and let what is in flight finish. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token that is not cancelled.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stop starting new work (idempotent).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Cancel::cancel`] was called on this token or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a node ended, as far as the nodes waiting on it are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Done: nodes waiting on it may start.
    Done,
    /// Done, but nodes waiting on it can never start (a failure, a node kept or skipped).
    Blocks,
}

/// What [`Driver::launch`] did with a ready node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Its work was spawned on the [`Tasks`]: it counts against the parallelism bound
    /// until it lands.
    Spawned,
    /// It needed no work (or could not start): settled now.
    Settled(Fate),
}

/// The order ready nodes start in.
#[derive(Debug, Clone)]
pub enum Priority {
    /// The largest cost first (cost = the node's longest remaining path); ties by index.
    LongestFirst(Vec<u64>),
    /// The smallest cost first; ties by index.
    ShortestFirst(Vec<u64>),
    /// By index (declaration order).
    Fifo,
}

/// The tasks in flight: a driver spawns a node's work here.
pub struct Tasks<T> {
    set: JoinSet<(usize, T)>,
}

impl<T: Send + 'static> Tasks<T> {
    /// Run `work` for node `i`; its output goes to [`Driver::land`].
    pub fn spawn<F>(&mut self, i: usize, work: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.set.spawn(async move { (i, work.await) });
    }
}

/// What a walk does with its nodes. The scheduler decides when; the driver decides what.
pub trait Driver {
    /// What a node's spawned work returns.
    type Out: Send + 'static;
    /// Start ready node `i`: spawn its work on `tasks`, or settle it now.
    fn launch(&mut self, i: usize, tasks: &mut Tasks<Self::Out>) -> impl Future<Output = Launch>;
    /// Node `i`'s work finished with `out`: record it and say how it ended.
    fn land(&mut self, i: usize, out: Self::Out) -> Fate;
    /// Node `i` can never start: `by`, which it waits on, blocks.
    fn blocked(&mut self, i: usize, by: usize);
    /// The run was cancelled before node `i` started.
    fn cancelled(&mut self, i: usize);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Settled(Fate),
}

/// The scheduling state of one walk.
pub struct Schedule {
    /// Per node: the nodes it waits on.
    waits: Vec<Vec<usize>>,
    state: Vec<State>,
    priority: Priority,
    parallelism: usize,
    running: usize,
}

impl Schedule {
    /// A schedule over `waits.len()` nodes, node `i` waiting on every node in `waits[i]`,
    /// at most `parallelism` (at least one) running at once.
    pub fn new(waits: Vec<Vec<usize>>, parallelism: usize, priority: Priority) -> Schedule {
        let state = vec![State::Pending; waits.len()];
        Schedule { waits, state, priority, parallelism: parallelism.max(1), running: 0 }
    }

    /// Settle node `i` before the run (excluded by `--target`, decided beforehand).
    pub fn settle(&mut self, i: usize, fate: Fate) {
        if let Some(s) = self.state.get_mut(i) {
            *s = State::Settled(fate);
        }
    }

    fn is_ready(&self, i: usize) -> bool {
        self.state[i] == State::Pending && self.waits[i].iter().all(|&w| self.state[w] == State::Settled(Fate::Done))
    }

    /// The ready nodes, in the order they start.
    fn ready(&self) -> Vec<usize> {
        let mut ready: Vec<usize> = (0..self.state.len()).filter(|&i| self.is_ready(i)).collect();
        match &self.priority {
            Priority::LongestFirst(cost) => {
                ready.sort_by_key(|&i| (std::cmp::Reverse(cost.get(i).copied().unwrap_or(0)), i));
            }
            Priority::ShortestFirst(cost) => ready.sort_by_key(|&i| (cost.get(i).copied().unwrap_or(0), i)),
            Priority::Fifo => {}
        }
        ready
    }

    /// One pass over the pending nodes, in index order: a node that waits on a blocking
    /// node is blocked too. Answers whether any node changed.
    fn block_pass<D: Driver>(&mut self, driver: &mut D) -> bool {
        let mut changed = false;
        for i in 0..self.state.len() {
            if self.state[i] != State::Pending {
                continue;
            }
            let by = self.waits[i].iter().copied().find(|&w| self.state[w] == State::Settled(Fate::Blocks));
            if let Some(b) = by {
                self.state[i] = State::Settled(Fate::Blocks);
                driver.blocked(i, b);
                changed = true;
            }
        }
        changed
    }

    /// Walk the graph to the end with `driver`, stopping dispatch once `cancel` is set.
    ///
    /// # Cancel safety
    /// Dropping the future aborts the tasks in flight (they live in a `JoinSet`).
    pub async fn run<D: Driver>(&mut self, driver: &mut D, cancel: &Cancel) {
        let mut tasks = Tasks { set: JoinSet::new() };
        // This loop never breaks on a failure: nodes that do not depend on it carry on.
        loop {
            if cancel.is_cancelled() && tasks.set.is_empty() {
                for i in 0..self.state.len() {
                    if self.state[i] == State::Pending {
                        self.state[i] = State::Settled(Fate::Blocks);
                        driver.cancelled(i);
                    }
                }
                break;
            }
            for i in self.ready() {
                if self.running >= self.parallelism || cancel.is_cancelled() {
                    break;
                }
                match driver.launch(i, &mut tasks).await {
                    Launch::Spawned => {
                        self.state[i] = State::Running;
                        self.running += 1;
                    }
                    Launch::Settled(fate) => self.state[i] = State::Settled(fate),
                }
            }
            if tasks.set.is_empty() {
                // Nodes settled without work may have made others ready.
                if (0..self.state.len()).any(|i| self.is_ready(i)) {
                    continue;
                }
                // Nothing running and nothing ready: settle what can never start.
                if self.block_pass(driver) {
                    continue;
                }
                break;
            }
            let Some(joined) = tasks.set.join_next().await else { continue };
            // A task that panicked is a bug; its node stays running and is never settled.
            let Ok((i, out)) = joined else { continue };
            self.running -= 1;
            self.state[i] = State::Settled(driver.land(i, out));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// What happened, in order, from the driver's point of view.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Start(usize),
        Settle(usize),
        Land(usize),
        Blocked(usize, usize),
        Cancelled(usize),
    }

    /// A test driver: each node either settles at once or sleeps, then lands.
    #[derive(Default)]
    struct Fake {
        log: Arc<Mutex<Vec<Ev>>>,
        /// Nodes that settle without work, and how.
        settle: HashMap<usize, Fate>,
        /// Nodes whose work fails.
        fail: Vec<usize>,
        /// Per node: how long its work takes (default 1 ms).
        delay: HashMap<usize, u64>,
        /// Largest number of tasks in flight at once.
        in_flight: Arc<Mutex<(usize, usize)>>,
        /// Cancel this token when node `.0` starts.
        cancel_at: Option<(usize, Cancel)>,
    }

    impl Fake {
        fn events(&self) -> Vec<Ev> {
            self.log.lock().unwrap().clone()
        }
        fn starts(&self) -> Vec<usize> {
            self.events()
                .into_iter()
                .filter_map(|e| match e {
                    Ev::Start(i) => Some(i),
                    _ => None,
                })
                .collect()
        }
        fn lands(&self) -> Vec<usize> {
            self.events()
                .into_iter()
                .filter_map(|e| match e {
                    Ev::Land(i) => Some(i),
                    _ => None,
                })
                .collect()
        }
        fn peak(&self) -> usize {
            self.in_flight.lock().unwrap().1
        }
    }

    impl Driver for Fake {
        type Out = bool;
        async fn launch(&mut self, i: usize, tasks: &mut Tasks<bool>) -> Launch {
            if let Some((at, c)) = &self.cancel_at
                && *at == i
            {
                c.cancel();
            }
            if let Some(&f) = self.settle.get(&i) {
                self.log.lock().unwrap().push(Ev::Settle(i));
                return Launch::Settled(f);
            }
            self.log.lock().unwrap().push(Ev::Start(i));
            let ok = !self.fail.contains(&i);
            let ms = self.delay.get(&i).copied().unwrap_or(1);
            let flight = self.in_flight.clone();
            tasks.spawn(i, async move {
                {
                    let mut f = flight.lock().unwrap();
                    f.0 += 1;
                    f.1 = f.1.max(f.0);
                }
                tokio::time::sleep(Duration::from_millis(ms)).await;
                flight.lock().unwrap().0 -= 1;
                ok
            });
            Launch::Spawned
        }
        fn land(&mut self, i: usize, ok: bool) -> Fate {
            self.log.lock().unwrap().push(Ev::Land(i));
            if ok { Fate::Done } else { Fate::Blocks }
        }
        fn blocked(&mut self, i: usize, by: usize) {
            self.log.lock().unwrap().push(Ev::Blocked(i, by));
        }
        fn cancelled(&mut self, i: usize) {
            self.log.lock().unwrap().push(Ev::Cancelled(i));
        }
    }

    /// `waits` from `(node, waits on)` pairs.
    fn graph(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
        let mut w = vec![Vec::new(); n];
        for &(a, b) in edges {
            w[a].push(b);
        }
        w
    }

    async fn walk(waits: Vec<Vec<usize>>, par: usize, p: Priority, fake: &mut Fake) -> Schedule {
        let mut s = Schedule::new(waits, par, p);
        s.run(fake, &Cancel::new()).await;
        s
    }

    fn position(v: &[usize], x: usize) -> usize {
        v.iter().position(|&y| y == x).unwrap()
    }

    #[tokio::test]
    async fn an_empty_plan_finishes_at_once() {
        let mut f = Fake::default();
        walk(Vec::new(), 4, Priority::Fifo, &mut f).await;
        assert!(f.events().is_empty());
    }

    #[tokio::test]
    async fn a_chain_runs_in_dependency_order() {
        let mut f = Fake::default();
        walk(graph(4, &[(1, 0), (2, 1), (3, 2)]), 4, Priority::Fifo, &mut f).await;
        assert_eq!(f.starts(), vec![0, 1, 2, 3]);
        assert_eq!(f.lands(), vec![0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn a_node_starts_only_after_everything_it_waits_on_landed() {
        let mut f = Fake::default();
        f.delay.insert(0, 30);
        walk(graph(3, &[(2, 0), (2, 1)]), 4, Priority::Fifo, &mut f).await;
        let ev = f.events();
        let start2 = ev.iter().position(|e| *e == Ev::Start(2)).unwrap();
        assert!(ev.iter().position(|e| *e == Ev::Land(0)).unwrap() < start2);
        assert!(ev.iter().position(|e| *e == Ev::Land(1)).unwrap() < start2);
    }

    #[tokio::test]
    async fn parallelism_bounds_tasks_in_flight() {
        let mut f = Fake::default();
        for i in 0..10 {
            f.delay.insert(i, 10);
        }
        walk(graph(10, &[]), 3, Priority::Fifo, &mut f).await;
        assert_eq!(f.peak(), 3);
        assert_eq!(f.lands().len(), 10);
    }

    #[tokio::test]
    async fn parallelism_zero_means_one() {
        let mut f = Fake::default();
        for i in 0..4 {
            f.delay.insert(i, 5);
        }
        walk(graph(4, &[]), 0, Priority::Fifo, &mut f).await;
        assert_eq!(f.peak(), 1);
        assert_eq!(f.starts(), vec![0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn independent_nodes_run_in_parallel() {
        let mut f = Fake::default();
        for i in 0..5 {
            f.delay.insert(i, 20);
        }
        walk(graph(5, &[]), 8, Priority::Fifo, &mut f).await;
        assert_eq!(f.peak(), 5);
    }

    #[tokio::test]
    async fn longest_remaining_path_starts_first() {
        let mut f = Fake::default();
        walk(graph(4, &[]), 1, Priority::LongestFirst(vec![1, 9, 5, 9]), &mut f).await;
        // Highest cost first; equal costs by index.
        assert_eq!(f.starts(), vec![1, 3, 2, 0]);
    }

    #[tokio::test]
    async fn shortest_first_reverses_the_order() {
        let mut f = Fake::default();
        walk(graph(4, &[]), 1, Priority::ShortestFirst(vec![1, 9, 5, 9]), &mut f).await;
        assert_eq!(f.starts(), vec![0, 2, 1, 3]);
    }

    #[tokio::test]
    async fn fifo_starts_in_declaration_order() {
        let mut f = Fake::default();
        walk(graph(5, &[]), 1, Priority::Fifo, &mut f).await;
        assert_eq!(f.starts(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn the_critical_chain_is_started_before_cheap_leaves() {
        // 0 -> 1 -> 2 is long; 3 and 4 are cheap leaves.
        let mut f = Fake::default();
        let cost = vec![30, 20, 10, 1, 1];
        walk(graph(5, &[(1, 0), (2, 1)]), 1, Priority::LongestFirst(cost), &mut f).await;
        let s = f.starts();
        assert_eq!(s[0], 0);
        assert!(position(&s, 1) < position(&s, 3));
    }

    #[tokio::test]
    async fn a_failure_blocks_its_transitive_dependents_only() {
        let mut f = Fake { fail: vec![0], ..Fake::default() };
        walk(graph(5, &[(1, 0), (2, 1), (4, 3)]), 4, Priority::Fifo, &mut f).await;
        let ev = f.events();
        assert!(ev.contains(&Ev::Blocked(1, 0)));
        assert!(ev.contains(&Ev::Blocked(2, 1)));
        assert!(!f.starts().contains(&1) && !f.starts().contains(&2));
        assert_eq!(f.lands().iter().filter(|&&i| i == 3 || i == 4).count(), 2);
    }

    #[tokio::test]
    async fn the_blocker_named_is_the_first_blocking_wait() {
        let mut f = Fake { fail: vec![0, 1], ..Fake::default() };
        walk(graph(3, &[(2, 1), (2, 0)]), 4, Priority::Fifo, &mut f).await;
        assert!(f.events().contains(&Ev::Blocked(2, 1)));
    }

    #[tokio::test]
    async fn a_node_settled_as_blocking_blocks_like_a_failure() {
        let mut f = Fake::default();
        f.settle.insert(0, Fate::Blocks);
        f.settle.insert(2, Fate::Done);
        walk(graph(4, &[(1, 0), (3, 2)]), 2, Priority::Fifo, &mut f).await;
        let ev = f.events();
        assert!(ev.contains(&Ev::Blocked(1, 0)));
        assert!(ev.contains(&Ev::Land(3)));
    }

    #[tokio::test]
    async fn settled_nodes_do_not_use_up_parallelism() {
        let mut f = Fake::default();
        for i in 0..3 {
            f.settle.insert(i, Fate::Done);
        }
        f.delay.insert(3, 10);
        f.delay.insert(4, 10);
        walk(graph(5, &[]), 2, Priority::Fifo, &mut f).await;
        assert_eq!(f.peak(), 2);
        assert_eq!(f.starts(), vec![3, 4]);
    }

    #[tokio::test]
    async fn nodes_settled_before_the_run_are_not_launched_and_release_waiters() {
        let mut f = Fake::default();
        let mut s = Schedule::new(graph(3, &[(1, 0), (2, 0)]), 2, Priority::Fifo);
        s.settle(0, Fate::Done);
        s.run(&mut f, &Cancel::new()).await;
        assert_eq!(f.starts(), vec![1, 2]);
    }

    #[tokio::test]
    async fn a_slow_node_does_not_hold_up_independent_ones() {
        let mut f = Fake::default();
        f.delay.insert(0, 200);
        // 0 is slow; 1 -> 2 -> 3 is an independent chain.
        walk(graph(4, &[(2, 1), (3, 2)]), 2, Priority::Fifo, &mut f).await;
        let lands = f.lands();
        assert_eq!(*lands.last().unwrap(), 0, "{lands:?}");
        assert_eq!(&lands[..3], &[1, 2, 3]);
    }

    #[tokio::test]
    async fn cancellation_mid_walk_lets_in_flight_work_finish_and_starts_nothing_new() {
        let c = Cancel::new();
        let mut f = Fake { cancel_at: Some((1, c.clone())), ..Fake::default() };
        f.delay.insert(1, 20);
        let mut s = Schedule::new(graph(5, &[(2, 1), (3, 2)]), 1, Priority::Fifo);
        s.run(&mut f, &c).await;
        // 0 ran, 1 was in flight when cancelled and finished; nothing after started.
        assert_eq!(f.starts(), vec![0, 1]);
        assert_eq!(f.lands(), vec![0, 1]);
        let cancelled: Vec<Ev> = f.events().into_iter().filter(|e| matches!(e, Ev::Cancelled(_))).collect();
        assert_eq!(cancelled, vec![Ev::Cancelled(2), Ev::Cancelled(3), Ev::Cancelled(4)]);
    }

    #[tokio::test]
    async fn a_run_cancelled_before_it_starts_launches_nothing() {
        let c = Cancel::new();
        c.cancel();
        let mut f = Fake::default();
        let mut s = Schedule::new(graph(3, &[]), 4, Priority::Fifo);
        s.run(&mut f, &c).await;
        assert_eq!(f.events(), vec![Ev::Cancelled(0), Ev::Cancelled(1), Ev::Cancelled(2)]);
    }

    #[tokio::test]
    async fn cancel_is_shared_by_clones() {
        let a = Cancel::new();
        let b = a.clone();
        assert!(!b.is_cancelled());
        a.cancel();
        assert!(b.is_cancelled());
        a.cancel();
        assert!(a.is_cancelled());
    }

    #[tokio::test]
    async fn every_node_ends_exactly_once() {
        let mut f = Fake { fail: vec![2], ..Fake::default() };
        f.settle.insert(5, Fate::Done);
        let edges = [(1, 0), (3, 2), (4, 3), (4, 1), (6, 5), (7, 4)];
        walk(graph(8, &edges), 3, Priority::LongestFirst(vec![5, 4, 3, 2, 1, 1, 1, 1]), &mut f).await;
        let mut ended: Vec<usize> = f
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Land(i) | Ev::Settle(i) | Ev::Blocked(i, _) | Ev::Cancelled(i) => Some(i),
                Ev::Start(_) => None,
            })
            .collect();
        ended.sort_unstable();
        assert_eq!(ended, (0..8).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn waiting_on_everything_else_runs_last() {
        let mut f = Fake::default();
        walk(graph(4, &[(0, 1), (0, 2), (0, 3)]), 4, Priority::LongestFirst(vec![9, 1, 1, 1]), &mut f).await;
        assert_eq!(*f.starts().last().unwrap(), 0);
    }
}
