//! A fixed-capacity slab: values keyed by small integers (mio tokens),
//! with freed keys reused, each value on one of `L` lists kept in the
//! order the values were last touched (least recently touched first).
//!
//! The event loop keeps one list per kind of connection and activity and
//! touches a connection whenever it moves bytes, so the front of a list is
//! the connection idle longest: finding, unlinking or moving one costs
//! O(1), whatever the number of connections, which keeps the cost of
//! admitting a connection at a full budget constant.
//!
//! Memory: capacity (the sum of the connection budgets, at most 2 × 65,536)
//! values, 12 bytes of links and 8 of free list per slot, all reserved at
//! start-up; inserting into a full slab is refused, not grown. Slots are
//! written only when first used, so the pages of slots that never held a
//! connection are never touched and cost no resident memory.

/// Marks the end of a list.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    /// Which list the slot is on (meaningless while it is free).
    list: u32,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    len: usize,
}

pub struct Slab<T, const L: usize = 1> {
    /// Every slot used so far; grows up to `capacity` within the room
    /// reserved at start-up, never beyond it.
    entries: Vec<Option<T>>,
    links: Vec<Link>,
    lists: [List; L],
    /// Freed keys, taken before a never-used slot.
    free: Vec<usize>,
    len: usize,
    capacity: usize,
}

impl<T, const L: usize> Slab<T, L> {
    /// # Panics
    /// When `capacity` does not fit the 32-bit links (more than 4 × 10^9).
    pub fn with_capacity(capacity: usize) -> Slab<T, L> {
        assert!(
            capacity < NIL as usize,
            "slab capacity {capacity} too large"
        );
        let empty = List {
            head: NIL,
            tail: NIL,
            len: 0,
        };
        Slab {
            entries: Vec::with_capacity(capacity),
            links: Vec::with_capacity(capacity),
            lists: [empty; L],
            free: Vec::with_capacity(capacity),
            len: 0,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Values on `list`.
    pub fn list_len(&self, list: usize) -> usize {
        self.lists[list].len
    }

    /// Stores `value` at the back of `list` (as the most recently touched)
    /// and returns its key, or gives it back when full.
    ///
    /// # Errors
    /// The value itself when every slot is taken.
    ///
    /// # Panics
    /// When `list` is not below `L`.
    pub fn insert(&mut self, value: T, list: usize) -> Result<usize, T> {
        assert!(list < L, "no list {list}");
        let key = match self.free.pop() {
            Some(key) => {
                self.entries[key] = Some(value);
                key
            }
            None if self.entries.len() < self.capacity => {
                self.entries.push(Some(value));
                self.links.push(Link {
                    prev: NIL,
                    next: NIL,
                    list: 0,
                });
                self.entries.len() - 1
            }
            None => return Err(value),
        };
        self.len += 1;
        self.link_back(key, list);
        Ok(key)
    }

    pub fn get(&self, key: usize) -> Option<&T> {
        self.entries.get(key).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key).and_then(Option::as_mut)
    }

    pub fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.entries.get_mut(key).and_then(Option::take);
        if value.is_some() {
            self.unlink(key);
            self.free.push(key);
            self.len -= 1;
        }
        value
    }

    /// The list `key` is on, if it holds a value.
    pub fn list_of(&self, key: usize) -> Option<usize> {
        match self.entries.get(key) {
            Some(Some(_)) => Some(self.links[key].list as usize),
            _ => None,
        }
    }

    /// Moves `key` to the back of `list`: it becomes the most recently
    /// touched there. Nothing happens for a free key.
    ///
    /// # Panics
    /// When `list` is not below `L`.
    pub fn touch(&mut self, key: usize, list: usize) {
        assert!(list < L, "no list {list}");
        if self.list_of(key).is_some() {
            self.unlink(key);
            self.link_back(key, list);
        }
    }

    /// The key least recently touched (or inserted) on `list`.
    pub fn oldest(&self, list: usize) -> Option<usize> {
        let head = self.lists[list].head;
        (head != NIL).then_some(head as usize)
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }

    fn link_back(&mut self, key: usize, list: usize) {
        let tail = self.lists[list].tail;
        self.links[key] = Link {
            prev: tail,
            next: NIL,
            list: list as u32,
        };
        match tail {
            NIL => self.lists[list].head = key as u32,
            t => self.links[t as usize].next = key as u32,
        }
        self.lists[list].tail = key as u32;
        self.lists[list].len += 1;
    }

    fn unlink(&mut self, key: usize) {
        let Link { prev, next, list } = self.links[key];
        let list = &mut self.lists[list as usize];
        match prev {
            NIL => list.head = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => list.tail = prev,
            n => self.links[n as usize].prev = prev,
        }
        list.len -= 1;
        self.links[key].prev = NIL;
        self.links[key].next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_refuses_and_reuses() {
        let mut s: Slab<char> = Slab::with_capacity(2);
        let a = s.insert('a', 0).unwrap();
        let b = s.insert('b', 0).unwrap();
        assert_eq!(s.insert('c', 0), Err('c'));
        assert_eq!(s.remove(a), Some('a'));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.insert('d', 0), Ok(a));
        assert_eq!(s.get_mut(b), Some(&mut 'b'));
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().count(), 2);
    }

    /// Walks `list` front to back through the links, checking them both ways.
    fn walk<T, const L: usize>(s: &Slab<T, L>, list: usize) -> Vec<usize> {
        let mut keys = Vec::new();
        let mut prev = NIL;
        let mut at = s.lists[list].head;
        while at != NIL {
            let link = s.links[at as usize];
            assert_eq!(link.prev, prev);
            assert_eq!(link.list as usize, list);
            keys.push(at as usize);
            prev = at;
            at = link.next;
        }
        assert_eq!(s.lists[list].tail, prev);
        assert_eq!(s.lists[list].len, keys.len());
        keys
    }

    #[test]
    fn lists_keep_the_order_of_touches() {
        let mut s: Slab<u32, 2> = Slab::with_capacity(5);
        let k: Vec<usize> = (0..4).map(|i| s.insert(i, 0).unwrap()).collect();
        assert_eq!(walk(&s, 0), k);
        assert_eq!(s.oldest(0), Some(k[0]));
        assert_eq!(s.oldest(1), None);
        s.touch(k[0], 0);
        assert_eq!(walk(&s, 0), [k[1], k[2], k[3], k[0]]);
        s.touch(k[2], 1);
        s.touch(k[1], 1);
        assert_eq!(walk(&s, 0), [k[3], k[0]]);
        assert_eq!(walk(&s, 1), [k[2], k[1]]);
        assert_eq!(s.list_of(k[2]), Some(1));
        s.remove(k[3]);
        s.remove(k[1]);
        assert_eq!(walk(&s, 0), [k[0]]);
        assert_eq!(walk(&s, 1), [k[2]]);
        assert_eq!(s.list_of(k[1]), None);
        // A freed key is reused at the back of its new list; touching a
        // free key changes nothing.
        s.touch(k[3], 1);
        let n = s.insert(9, 1).unwrap();
        assert_eq!(walk(&s, 1), [k[2], n]);
        assert_eq!((s.list_len(0), s.list_len(1), s.len()), (1, 2, 3));
    }

    #[test]
    fn random_operations_match_a_model() {
        // A vector per list, in touch order, is the model.
        let mut s: Slab<usize, 3> = Slab::with_capacity(8);
        let mut model: [Vec<usize>; 3] = Default::default();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 8) as usize;
            let list = ((x >> 8) % 3) as usize;
            let held = model.iter().position(|m| m.contains(&key));
            match ((x >> 16) % 3, held) {
                (0, _) => {
                    if let Ok(k) = s.insert(x as usize, list) {
                        model[list].push(k);
                    } else {
                        assert_eq!(s.len(), 8);
                    }
                }
                (1, Some(from)) => {
                    s.touch(key, list);
                    model[from].retain(|&k| k != key);
                    model[list].push(key);
                }
                (_, Some(from)) => {
                    assert!(s.remove(key).is_some());
                    model[from].retain(|&k| k != key);
                }
                (_, None) => assert!(s.remove(key).is_none()),
            }
            for (l, m) in model.iter().enumerate() {
                assert_eq!(&walk(&s, l), m);
                assert_eq!(s.oldest(l), m.first().copied());
            }
        }
    }
}
