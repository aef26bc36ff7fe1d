//! The Config table (DESIGN.md §5): named JSON documents (drift settings per model, the
//! drift alert state of a line, a reference capture's progress), each with a revision.
//! A write is conditional on the revision it read, so two admins' changes cannot
//! silently overwrite each other, and two overlapping checks cannot both fire an alert.

use super::{StoreError, get_s, n, s, sdk_error};
use aws_sdk_dynamodb::Client;

#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub doc: serde_json::Value,
    /// 0 for a document never written; each write adds one.
    pub revision: u64,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
}

pub struct ConfigStore {
    client: Client,
    table: String,
}

impl ConfigStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn get(&self, name: &str) -> Result<Option<Doc>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("name", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let doc = serde_json::from_str(get_s(item, "doc")?)
            .map_err(|e| StoreError::Corrupt(format!("config {name}: {e}")))?;
        let optional = |key: &str| item.get(key).and_then(|v| v.as_s().ok()).cloned();
        Ok(Some(Doc {
            doc,
            revision: super::get_n_opt(item, "revision")?.unwrap_or(0),
            updated_at: optional("updated_at"),
            updated_by: optional("updated_by"),
        }))
    }

    /// The document `name` read as `T` (`T`'s default until one is written) and its
    /// revision; a stored document that does not read as `T` is `Corrupt`.
    pub async fn load<T: Default + serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<(T, u64), StoreError> {
        match self.get(name).await? {
            None => Ok((T::default(), 0)),
            Some(doc) => {
                let value = serde_json::from_value(doc.doc)
                    .map_err(|e| StoreError::Corrupt(format!("config {name}: {e}")))?;
                Ok((value, doc.revision))
            }
        }
    }

    /// Writes `doc` as revision `read_revision + 1`, if the stored revision is still
    /// `read_revision` (0: if there is none): `Conflict` otherwise.
    pub async fn put(
        &self,
        name: &str,
        doc: &serde_json::Value,
        read_revision: u64,
        updated_at: &str,
        updated_by: &str,
    ) -> Result<u64, StoreError> {
        let revision = read_revision + 1;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("name", s(name))
            .item("doc", s(doc.to_string()))
            .item("revision", n(revision))
            .item("updated_at", s(updated_at))
            .item("updated_by", s(updated_by));
        put = if read_revision == 0 {
            put.condition_expression("attribute_not_exists(#n)")
                .expression_attribute_names("#n", "name")
        } else {
            put.condition_expression("revision = :read")
                .expression_attribute_values(":read", n(read_revision))
        };
        match put.send().await {
            Ok(_) => Ok(revision),
            Err(err) if super::is_conditional_failure(&err) => Err(StoreError::Conflict),
            Err(err) => Err(sdk_error(err)),
        }
    }
}
