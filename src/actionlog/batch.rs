//! How records are grouped into `PutRecords` requests.

use std::collections::VecDeque;

use super::record::EncodedRecord;

/// Caps on one request, counted the way Kinesis counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_records: usize,
    /// Data plus partition keys, summed over the request.
    pub max_bytes: usize,
}

/// `PutRecords` accepts 500 records and 5 MiB per request.
pub const KINESIS_LIMITS: BatchLimits = BatchLimits {
    max_records: 500,
    max_bytes: 5 * 1024 * 1024,
};

impl BatchLimits {
    /// Whether `queued` records of `queued_bytes` fill a request.
    pub fn is_full(&self, queued: usize, queued_bytes: usize) -> bool {
        queued >= self.max_records || queued_bytes >= self.max_bytes
    }
}

/// Takes from the front of `queue` the longest run of records that fits
/// in one request. A record larger than the byte cap on its own would
/// never fit; records are checked against the per-record limit when
/// they are encoded, which is far below the request cap, so the first
/// record always fits.
pub fn take_batch(queue: &mut VecDeque<EncodedRecord>, limits: BatchLimits) -> Vec<EncodedRecord> {
    let mut bytes = 0;
    let mut count = 0;
    for record in queue.iter() {
        let size = record.size();
        if count == limits.max_records || (count > 0 && bytes + size > limits.max_bytes) {
            break;
        }
        bytes += size;
        count += 1;
    }
    queue.drain(..count).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    const KEY: &str = "B1:L1";

    fn record_of_size(size: usize) -> EncodedRecord {
        EncodedRecord {
            partition_key: KEY.into(),
            data: Bytes::from(vec![b'x'; size - KEY.len()]),
        }
    }

    fn split(sizes: &[usize], limits: BatchLimits) -> Vec<Vec<usize>> {
        let mut queue: VecDeque<_> = sizes.iter().map(|&s| record_of_size(s)).collect();
        let mut batches = Vec::new();
        while !queue.is_empty() {
            batches.push(
                take_batch(&mut queue, limits)
                    .iter()
                    .map(EncodedRecord::size)
                    .collect(),
            );
        }
        batches
    }

    #[test]
    fn exactly_500_records_make_one_batch_and_501_make_two() {
        assert_eq!(split(&[100; 500], KINESIS_LIMITS).len(), 1);
        let two = split(&[100; 501], KINESIS_LIMITS);
        assert_eq!(two.iter().map(Vec::len).collect::<Vec<_>>(), [500, 1]);
    }

    #[test]
    fn exactly_5_mib_is_one_batch_and_one_byte_more_is_two() {
        let mib = 1024 * 1024;
        assert_eq!(split(&[mib; 5], KINESIS_LIMITS).len(), 1);
        let two = split(&[mib, mib, mib, mib, mib, 1 + KEY.len()], KINESIS_LIMITS);
        assert_eq!(two.iter().map(Vec::len).collect::<Vec<_>>(), [5, 1]);
        let two = split(
            &[mib, mib, mib, mib, mib - 1, 2 + KEY.len()],
            KINESIS_LIMITS,
        );
        assert_eq!(two.iter().map(Vec::len).collect::<Vec<_>>(), [5, 1]);
    }

    #[test]
    fn partition_keys_count_towards_the_byte_cap() {
        // 5 records whose data alone is exactly 1 MiB each: with their keys
        // they exceed 5 MiB, so the fifth goes to a second request.
        let mib = 1024 * 1024;
        let batches = split(&[mib + KEY.len(); 5], KINESIS_LIMITS);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [4, 1]);
    }

    proptest! {
        #[test]
        fn batches_respect_both_caps_are_maximal_and_keep_order(
            sizes in prop::collection::vec(
                prop_oneof![
                    8 => (KEY.len() + 1)..2_000usize,
                    1 => (KEY.len() + 1)..=(1024 * 1024usize),
                ],
                0..1_600,
            )
        ) {
            let limits = KINESIS_LIMITS;
            let batches = split(&sizes, limits);
            for (i, batch) in batches.iter().enumerate() {
                let bytes: usize = batch.iter().sum();
                prop_assert!(!batch.is_empty());
                prop_assert!(batch.len() <= limits.max_records);
                prop_assert!(bytes <= limits.max_bytes);
                if let Some(next) = batches.get(i + 1) {
                    // Maximal: the next record would break one of the caps.
                    prop_assert!(
                        batch.len() == limits.max_records || bytes + next[0] > limits.max_bytes
                    );
                }
            }
            let flat: Vec<usize> = batches.into_iter().flatten().collect();
            prop_assert_eq!(flat, sizes);
        }

        #[test]
        fn small_caps_behave_the_same(
            sizes in prop::collection::vec((KEY.len() + 1)..64usize, 0..300),
            max_records in 1..20usize,
            max_bytes in 64..400usize,
        ) {
            let limits = BatchLimits { max_records, max_bytes };
            let batches = split(&sizes, limits);
            for (i, batch) in batches.iter().enumerate() {
                let bytes: usize = batch.iter().sum();
                prop_assert!(batch.len() <= max_records && bytes <= max_bytes);
                if let Some(next) = batches.get(i + 1) {
                    prop_assert!(batch.len() == max_records || bytes + next[0] > max_bytes);
                }
            }
            prop_assert_eq!(batches.into_iter().flatten().collect::<Vec<_>>(), sizes);
        }
    }
}
