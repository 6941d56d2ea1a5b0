//! A fixed-capacity slab: values keyed by small integers (mio tokens),
//! with freed keys reused. Capacity is `--max-connections`, reserved at
//! start-up; inserting into a full slab is refused, not grown.

pub struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    pub fn with_capacity(capacity: usize) -> Slab<T> {
        let mut entries = Vec::with_capacity(capacity);
        entries.resize_with(capacity, || None);
        Slab {
            entries,
            free: (0..capacity).rev().collect(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` and returns its key, or gives it back when full.
    ///
    /// # Errors
    /// The value itself when every slot is taken.
    pub fn insert(&mut self, value: T) -> Result<usize, T> {
        match self.free.pop() {
            Some(key) => {
                self.entries[key] = Some(value);
                self.len += 1;
                Ok(key)
            }
            None => Err(value),
        }
    }

    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key).and_then(Option::as_mut)
    }

    pub fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.entries.get_mut(key).and_then(Option::take);
        if value.is_some() {
            self.free.push(key);
            self.len -= 1;
        }
        value
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_refuses_and_reuses() {
        let mut s = Slab::with_capacity(2);
        let a = s.insert('a').unwrap();
        let b = s.insert('b').unwrap();
        assert_eq!(s.insert('c'), Err('c'));
        assert_eq!(s.remove(a), Some('a'));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.insert('d'), Ok(a));
        assert_eq!(s.get_mut(b), Some(&mut 'b'));
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().count(), 2);
    }
}
