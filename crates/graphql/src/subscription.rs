//! Subscriptions: refunds as they change. The log is tailed from its head;
//! each refund event is shown once the read models reflect it.

use async_graphql::{Context, ID, Subscription};
use futures_util::Stream;
use futures_util::stream::StreamExt as _;

use crate::access::RoleGuard;
use crate::context::ApiContext;
use crate::error::ApiError;
use crate::input::payment_id;
use crate::role::Role;
use crate::types::Refund;

/// The root of all subscriptions.
#[derive(Debug, Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Every change of a refund (of one payment, or all), from now on.
    #[graphql(guard = "RoleGuard::new(Role::Viewer)")]
    async fn refund_updated(
        &self,
        context: &Context<'_>,
        #[graphql(name = "paymentId")] payment_id_filter: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Refund>>> {
        let api = context.data::<ApiContext>()?.clone();
        let only = payment_id_filter
            .as_deref()
            .map(|id| payment_id("paymentId", id))
            .transpose()?;
        let stream_name = only.as_ref().map(domain::payment_stream_name);
        let head = api.store.head().await.map_err(|error| ApiError::internal(&error))?;
        let events = eventlog::catch_up(api.store.clone(), head.position + 1);
        Ok(events.filter_map(move |event| {
            let api = api.clone();
            let stream_name = stream_name.clone();
            async move {
                let event = match event {
                    Ok(event) => event,
                    Err(error) => return Some(Err(ApiError::internal(&error).into())),
                };
                if stream_name.as_deref().is_some_and(|name| name != event.stream.as_str()) {
                    return None;
                }
                let decoded =
                    domain::PaymentEvent::from_stored(&event.event_type, event.schema_version, &event.payload, &[])
                        .ok()?;
                let refund_request_id = decoded.refund_request_id()?.clone();
                match api
                    .read_models
                    .wait_for_position(event.position, api.wait_for_position_max)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        return Some(Err(ApiError::NotCaughtUp {
                            position: event.position,
                        }
                        .into()));
                    }
                    Err(error) => return Some(Err(ApiError::internal(&error).into())),
                }
                match api.read_models.refund(&refund_request_id).await {
                    Ok(view) => view.map(|view| Ok(Refund::from(view))),
                    Err(error) => Some(Err(ApiError::internal(&error).into())),
                }
            }
        }))
    }
}
