//! Finding the Redis URL: `REDIS_URL` when given; otherwise, with `CACHE_NAME`, the
//! endpoint of that ElastiCache replication group (or single-node cluster) as the
//! ElastiCache API reports it, so a deployment names its cache instead of copying a
//! host name that changes when the cache is replaced.

use aws_sdk_elasticache::types::Endpoint;

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("elasticache: {0}")]
    Api(String),
    #[error("no ElastiCache replication group or cluster named {0:?} has an endpoint")]
    NotFound(String),
    #[error(
        "ElastiCache {0:?} requires in-transit encryption, which this build's Redis client does not speak"
    )]
    Tls(String),
}

fn url(endpoint: &Endpoint) -> Option<String> {
    let address = endpoint.address().filter(|a| !a.is_empty())?;
    let port = endpoint.port().unwrap_or(6379);
    Some(format!("redis://{address}:{port}"))
}

/// The `redis://` URL of the ElastiCache cache called `name`.
pub async fn elasticache_url(
    client: &aws_sdk_elasticache::Client,
    name: &str,
) -> Result<String, DiscoveryError> {
    // A replication group (the usual deployment: primary + replicas) first…
    match client
        .describe_replication_groups()
        .replication_group_id(name)
        .send()
        .await
    {
        Ok(out) => {
            if let Some(group) = out.replication_groups().first() {
                if group.transit_encryption_enabled() == Some(true) {
                    return Err(DiscoveryError::Tls(name.to_owned()));
                }
                let endpoint = group.configuration_endpoint().or_else(|| {
                    group
                        .node_groups()
                        .iter()
                        .find_map(|node_group| node_group.primary_endpoint())
                });
                if let Some(found) = endpoint.and_then(url) {
                    return Ok(found);
                }
            }
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_replication_group_not_found_fault()) => {}
        Err(err) => return Err(DiscoveryError::Api(inferloop::error::error_chain(&err))),
    }
    // …then a single-node cluster.
    let out = client
        .describe_cache_clusters()
        .cache_cluster_id(name)
        .show_cache_node_info(true)
        .send()
        .await
        .map_err(|err| DiscoveryError::Api(inferloop::error::error_chain(&err)))?;
    let cluster = out
        .cache_clusters()
        .first()
        .ok_or_else(|| DiscoveryError::NotFound(name.to_owned()))?;
    if cluster.transit_encryption_enabled() == Some(true) {
        return Err(DiscoveryError::Tls(name.to_owned()));
    }
    cluster
        .cache_nodes()
        .iter()
        .find_map(|node| node.endpoint().and_then(url))
        .ok_or_else(|| DiscoveryError::NotFound(name.to_owned()))
}
