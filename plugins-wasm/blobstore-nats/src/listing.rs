//! `list-objects`: the names of a bucket's live objects, read from its
//! metadata subjects through an ephemeral consumer, page by page as the
//! workload asks. The rollup keeps one metadata message per object, so
//! each object is listed once; deletion markers are skipped.

use crate::bucket::{Bucket, parse_info};
use crate::exports::wasi::blobstore::container::{Error, GuestStreamObjectNames};
use crate::js_error;
use keel_jetstream::JsError;
use keel_jetstream::consumer::Consumer;
use serde_json::json;
use std::cell::RefCell;
use std::collections::VecDeque;

/// Metadata messages fetched per round trip at most.
const BATCH: u64 = 1000;

/// A listing in progress.
pub struct Names {
    state: RefCell<State>,
}

struct State {
    /// `None` once every metadata message has been read.
    consumer: Option<Consumer>,
    /// Names read from the server and not yet handed out.
    ready: VecDeque<String>,
}

impl Names {
    /// Starts listing `bucket`.
    pub fn start(bucket: &Bucket) -> Result<Names, JsError> {
        let filter = format!("$O.{}.M.>", bucket.name);
        let consumer =
            Consumer::create(&bucket.stream, &filter, json!({ "deliver_policy": "all" }))?;
        let consumer = (consumer.num_pending > 0).then_some(consumer);
        Ok(Names {
            state: RefCell::new(State {
                consumer,
                ready: VecDeque::new(),
            }),
        })
    }
}

impl State {
    /// Reads until `want` names are ready or the listing is at its end.
    fn fill(&mut self, want: u64) -> Result<(), JsError> {
        while (self.ready.len() as u64) < want {
            let Some(consumer) = self.consumer.as_mut() else {
                return Ok(());
            };
            let batch = (want - self.ready.len() as u64).min(BATCH) as u32;
            let deliveries = consumer.fetch(batch, 2_000)?;
            if deliveries.last().is_none_or(|last| last.pending == 0) {
                self.consumer = None;
            }
            for delivery in deliveries {
                let info = parse_info(&delivery.body)?;
                if !info.deleted {
                    self.ready.push_back(info.name);
                }
            }
        }
        Ok(())
    }

    /// Takes up to `n` names; `true` when none are left after them. One
    /// name more than asked is read ahead, so the end is known in time.
    fn take(&mut self, n: u64) -> Result<(Vec<String>, bool), JsError> {
        self.fill(n.saturating_add(1))?;
        let n = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(self.ready.len());
        let taken = self.ready.drain(..n).collect();
        Ok((taken, self.ready.is_empty() && self.consumer.is_none()))
    }
}

impl GuestStreamObjectNames for Names {
    fn read_stream_object_names(&self, len: u64) -> Result<(Vec<String>, bool), Error> {
        self.state.borrow_mut().take(len).map_err(js_error)
    }

    fn skip_stream_object_names(&self, num: u64) -> Result<(u64, bool), Error> {
        let (skipped, end) = self.state.borrow_mut().take(num).map_err(js_error)?;
        Ok((skipped.len() as u64, end))
    }
}
