//! Reading the log for an audit: every batch of a scan handed to a step, with the next batch read meanwhile.

use std::ops::ControlFlow;

use eventlog::{EventBatch, EventScan, StoreError};

/// Hands every batch of `scan` to `step`, in order, until `step` breaks (its value is answered) or the scan
/// ends (`None`); a scan that fails is the error, after every batch before it was handed over.
///
/// The next batch is asked for while `step` works on the current one: a store that reads ahead on its own
/// thread has it ready, and one that reads a page per request (`read_all`) has it under way.
pub(crate) async fn for_each_batch<B>(
    scan: &mut EventScan<'_>,
    mut step: impl FnMut(&EventBatch) -> ControlFlow<B>,
) -> Result<Option<B>, StoreError> {
    let mut next = scan.next().await;
    loop {
        let batch = match next {
            None => return Ok(None),
            Some(Err(error)) => return Err(error),
            Some(Ok(batch)) => batch,
        };
        // The read is polled first, so it is under way while the step runs.
        let (prefetched, flow) = futures_util::future::join(scan.next(), async { step(&batch) }).await;
        if let ControlFlow::Break(value) = flow {
            return Ok(Some(value));
        }
        next = prefetched;
    }
}
