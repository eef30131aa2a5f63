//! A hand-written Aho–Corasick automaton: every occurrence of any of a set of byte patterns in
//! one pass.
//!
//! Built once per job from the named secrets' encoded forms. The trie's root has a dense 256-entry
//! table (most bytes of a body leave the automaton at the root, so that is the hot path); deeper
//! nodes keep sorted sparse transitions, searched by binary search, plus a failure link and the
//! patterns ending there (failure chain merged in at build time). Scanning is O(n log σ + matches)
//! for n input bytes, amortised over failure links, and allocates nothing.

/// A node of the trie.
struct Node {
    next: Vec<(u8, u32)>,
    fail: u32,
    /// Bytes from the root: how much of the input the state stands for.
    depth: u32,
    /// Indices of the patterns that end here, including those of the failure chain.
    out: Vec<u32>,
}

/// The automaton. State 0 is the root.
pub(super) struct Automaton {
    root: Box<[u32; 256]>,
    nodes: Vec<Node>,
}

impl Automaton {
    /// Builds the automaton; pattern `i` is reported as `i`. Empty patterns are never reported.
    pub fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Automaton {
        let mut nodes = vec![Node {
            next: Vec::new(),
            fail: 0,
            depth: 0,
            out: Vec::new(),
        }];
        for (i, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            if p.is_empty() {
                continue;
            }
            let mut s = 0usize;
            for &b in p {
                s = match nodes[s].next.iter().find(|t| t.0 == b) {
                    Some(t) => t.1 as usize,
                    None => {
                        let depth = nodes[s].depth + 1;
                        nodes.push(Node {
                            next: Vec::new(),
                            fail: 0,
                            depth,
                            out: Vec::new(),
                        });
                        let n = nodes.len() - 1;
                        nodes[s].next.push((b, n as u32));
                        n
                    }
                };
            }
            nodes[s].out.push(i as u32);
        }
        let mut root = Box::new([0u32; 256]);
        for n in &mut nodes {
            n.next.sort_unstable_by_key(|t| t.0);
        }
        for &(b, s) in &nodes[0].next {
            root[b as usize] = s;
        }
        let mut a = Automaton { root, nodes };
        a.link();
        a
    }

    /// Failure links, breadth first so a node's failure target is complete before it.
    fn link(&mut self) {
        let mut queue: std::collections::VecDeque<u32> =
            self.nodes[0].next.iter().map(|t| t.1).collect();
        while let Some(u) = queue.pop_front() {
            let children = self.nodes[u as usize].next.clone();
            for (b, v) in children {
                let fail = self.step(self.nodes[u as usize].fail, b);
                let inherited = self.nodes[fail as usize].out.clone();
                let node = &mut self.nodes[v as usize];
                node.fail = fail;
                node.out.extend(inherited);
                queue.push_back(v);
            }
        }
    }

    /// The state after reading `b` in state `s`.
    pub fn step(&self, mut s: u32, b: u8) -> u32 {
        loop {
            if s == 0 {
                return self.root[b as usize];
            }
            let node = &self.nodes[s as usize];
            if let Ok(i) = node.next.binary_search_by_key(&b, |t| t.0) {
                return node.next[i].1;
            }
            s = node.fail;
        }
    }

    /// The patterns that end in state `s`.
    pub fn matches(&self, s: u32) -> &[u32] {
        &self.nodes[s as usize].out
    }

    /// How many of the last bytes read state `s` stands for: any later match starts within
    /// them (or after).
    pub fn depth(&self, s: u32) -> usize {
        self.nodes[s as usize].depth as usize
    }

    /// How many states: for logs, never the patterns themselves.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(a: &Automaton, text: &[u8]) -> Vec<(usize, u32)> {
        let mut s = 0;
        let mut found = Vec::new();
        for (i, &b) in text.iter().enumerate() {
            s = a.step(s, b);
            found.extend(a.matches(s).iter().map(|&p| (i, p)));
        }
        found.sort();
        found
    }

    #[test]
    fn finds_overlapping_patterns() {
        let a = Automaton::new(&["he", "she", "his", "hers", ""]);
        assert_eq!(
            all(&a, b"ushers ahishe"),
            [(3, 0), (3, 1), (5, 3), (10, 2), (12, 0), (12, 1)]
        );
    }
}
