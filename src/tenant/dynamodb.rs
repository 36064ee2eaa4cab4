//! The production store: DynamoDB table `elevenlabs-agents` (HASH
//! `businessId`, RANGE `locationId`), items in the seed's format. The
//! owner, generation and version checks are a condition expression, so they hold
//! across replicas: DynamoDB evaluates the condition and writes as one
//! atomic step, and refuses with `ConditionalCheckFailedException` when the
//! condition is false (Amazon DynamoDB API Reference, UpdateItem:
//! <https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html>;
//! "DynamoDB and optimistic locking with version number",
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/DynamoDBMapper.OptimisticLocking.html>).

use futures::future::BoxFuture;
use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus,
};
use serde_json::{Map, Number, Value};

use super::item::{
    self, BUSINESS_ID, CREATED_AT, ENABLED, LOCATION_ID, OWNER, SPEC_GENERATION, TEMPLATE_CREATED,
    TEMPLATE_GENERATION, UPDATED_AT, VERSION,
};
use super::{
    Expect, Read, Seen, SpecGeneration, StoreError, TenantConfig, TenantKey, TenantSettings,
    TenantStore, check_write,
};
use crate::ids::Id;

const BACKEND: &str = "DynamoDB";
type Item = HashMap<String, AttributeValue>;

/// The SDK configuration for DynamoDB: standard retries (3 attempts) for
/// throttling and transient errors, 3 s per attempt.
pub async fn sdk_config() -> Result<aws_config::SdkConfig, crate::aws::NoRegion> {
    crate::aws::load(
        "the DynamoDB tenant store",
        RetryConfig::standard().with_max_attempts(3),
        Duration::from_secs(3),
    )
    .await
}

/// Tenant items in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: String) -> DynamoStore {
        DynamoStore { client, table }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(key: &TenantKey) -> Item {
        HashMap::from([
            (
                BUSINESS_ID.to_owned(),
                AttributeValue::S(key.business_id.to_string()),
            ),
            (
                LOCATION_ID.to_owned(),
                AttributeValue::S(key.location_id.to_string()),
            ),
        ])
    }

    fn parse(key: &TenantKey, item: &Item) -> Result<TenantConfig, StoreError> {
        item::from_json(&item_to_json(item)).map_err(|error| StoreError::BadItem {
            key: key.to_string(),
            error,
        })
    }

    async fn get_item(&self, key: &TenantKey, read: Read) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .consistent_read(read == Read::Strong)
            .send()
            .await
            .map_err(|e| classify(e, &self.table))?;
        Ok(out.item)
    }

    /// Why a conditional write failed, from the old item DynamoDB returned
    /// with the failure (`ReturnValuesOnConditionCheckFailure: ALL_OLD`
    /// puts it in the exception's `Item`) or, where it did not, a strongly
    /// consistent read.
    async fn refusal(
        &self,
        key: &TenantKey,
        owner: &Id,
        expect: Option<Expect>,
        must_exist: bool,
        old: Option<Item>,
    ) -> StoreError {
        let old = match old {
            Some(old) => Some(old),
            None => match self.get_item(key, Read::Strong).await {
                Ok(found) => found,
                Err(e) => return e,
            },
        };
        let old = old.map(|item| item_to_json(&item));
        match check_write(key, owner, expect, must_exist, old.as_ref()) {
            Err(refused) => refused,
            // The item read after the refusal passes: it changed again in
            // between. Still a stale write, and reading again is the fix.
            Ok(()) => StoreError::Stale {
                key: key.to_string(),
                seen: expect.map_or(Seen::Nothing, |e| e.seen),
                found: old
                    .as_ref()
                    .map_or(Seen::Nothing, |item| Seen::Version(item::version_of(item))),
            },
        }
    }

    async fn update(
        &self,
        key: &TenantKey,
        owner: &Id,
        expect: Expect,
        mut set: Map<String, Value>,
        remove: &[&str],
        must_exist: bool,
    ) -> Result<TenantConfig, StoreError> {
        let Expect { seen, planned } = expect;
        set.extend(item::generation_attributes(planned));
        let now = item::timestamp(item::now());
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut sets = Vec::new();
        for (i, (name, value)) in set.iter().enumerate() {
            names.insert(format!("#a{i}"), name.clone());
            values.insert(format!(":a{i}"), json_to_attr(value));
            sets.push(format!("#a{i} = :a{i}"));
        }
        for (placeholder, name) in [
            ("#owner", OWNER),
            ("#version", VERSION),
            ("#created", CREATED_AT),
            ("#updated", UPDATED_AT),
            ("#gen", SPEC_GENERATION),
            ("#tmade", TEMPLATE_CREATED),
            ("#tgen", TEMPLATE_GENERATION),
        ] {
            names.insert(placeholder.to_owned(), name.to_owned());
        }
        values.insert(":owner".to_owned(), AttributeValue::S(owner.to_string()));
        values.insert(":now".to_owned(), AttributeValue::S(now));
        values.insert(":zero".to_owned(), AttributeValue::N("0".into()));
        values.insert(":one".to_owned(), AttributeValue::N("1".into()));
        sets.extend([
            "#owner = :owner".to_owned(),
            "#updated = :now".to_owned(),
            "#created = if_not_exists(#created, :now)".to_owned(),
            "#version = if_not_exists(#version, :zero) + :one".to_owned(),
        ]);
        let mut expression = format!("SET {}", sets.join(", "));
        if !remove.is_empty() {
            let removed: Vec<String> = remove
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    names.insert(format!("#r{i}"), (*name).to_owned());
                    format!("#r{i}")
                })
                .collect();
            expression.push_str(&format!(" REMOVE {}", removed.join(", ")));
        }
        let mut conditions = vec!["(attribute_not_exists(#owner) OR #owner = :owner)"];
        if must_exist {
            conditions.push("attribute_exists(#business)");
        }
        // check_write's generation step: stored <= planned, compared field
        // by field as SpecGeneration orders them (comparators on numbers,
        // "Condition and filter expressions, operators, and functions",
        // Amazon DynamoDB Developer Guide:
        // <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html>).
        conditions.push(
            "(attribute_not_exists(#gen) OR #gen < :gen OR (#gen = :gen AND \
             (attribute_not_exists(#tmade) OR #tmade < :tmade OR (#tmade = :tmade AND \
             (attribute_not_exists(#tgen) OR #tgen <= :tgen)))))",
        );
        for (placeholder, n) in [
            (":gen", planned.voice_agent),
            (":tmade", planned.template_created),
            (":tgen", planned.template),
        ] {
            values.insert(placeholder.to_owned(), AttributeValue::N(n.to_string()));
        }
        conditions.push(match seen {
            Seen::Nothing => "attribute_not_exists(#business)",
            // An item from before the operator has no version attribute.
            Seen::Version(0) => {
                "attribute_exists(#business) AND (attribute_not_exists(#version) OR #version = :seen)"
            }
            Seen::Version(_) => "#version = :seen",
        });
        if let Seen::Version(v) = seen {
            values.insert(":seen".to_owned(), AttributeValue::N(v.to_string()));
        }
        let condition = conditions.join(" AND ");
        // DynamoDB refuses names the expressions do not use.
        if condition.contains("#business") {
            names.insert("#business".to_owned(), BUSINESS_ID.to_owned());
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Self::parse(key, &out.attributes.unwrap_or_default()),
            Err(e) => Err(match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    self.refusal(key, owner, Some(expect), must_exist, failed.item.clone())
                        .await
                }
                _ => classify(e, &self.table),
            }),
        }
    }
}

impl TenantStore for DynamoStore {
    fn get<'a>(
        &'a self,
        key: &'a TenantKey,
        read: Read,
    ) -> BoxFuture<'a, Result<Option<TenantConfig>, StoreError>> {
        Box::pin(async move {
            self.get_item(key, read)
                .await?
                .map(|item| Self::parse(key, &item))
                .transpose()
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        settings: &'a TenantSettings,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        Box::pin(async move {
            let set = item::settings_attributes(settings);
            let remove: Vec<&str> = item::OPTIONAL
                .into_iter()
                .filter(|name| !set.contains_key(*name))
                .collect();
            let expect = Expect { seen, planned };
            self.update(key, owner, expect, set, &remove, false).await
        })
    }

    fn set_enabled<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
        seen: Seen,
        planned: SpecGeneration,
        enabled: bool,
    ) -> BoxFuture<'a, Result<TenantConfig, StoreError>> {
        Box::pin(async move {
            let set = Map::from_iter([(ENABLED.to_owned(), Value::Bool(enabled))]);
            let expect = Expect { seen, planned };
            self.update(key, owner, expect, set, &[], true).await
        })
    }

    fn delete<'a>(
        &'a self,
        key: &'a TenantKey,
        owner: &'a Id,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(key)))
                .condition_expression("attribute_not_exists(#owner) OR #owner = :owner")
                .expression_attribute_names("#owner", OWNER)
                .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
                .return_values(ReturnValue::AllOld)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(out) => Ok(out.attributes.is_some_and(|a| !a.is_empty())),
                Err(e) => Err(match e.as_service_error() {
                    Some(DeleteItemError::ConditionalCheckFailedException(failed)) => {
                        self.refusal(key, owner, None, false, failed.item.clone())
                            .await
                    }
                    _ => classify(e, &self.table),
                }),
            }
        })
    }
}

/// Sorts an AWS failure into retryable or not, with the service's code.
fn classify<E, R>(error: SdkError<E, R>, table: &str) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable {
                backend: BACKEND,
                message: aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
            }
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or("").to_owned();
            match code {
                "ResourceNotFoundException" => StoreError::Failed {
                    backend: BACKEND,
                    message: format!(
                        "table {table} does not exist; create it with `voice-operator dynamodb create-table --dynamodb-table {table}`"
                    ),
                },
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionConflictException" => StoreError::Unavailable {
                    backend: BACKEND,
                    message: format!("{code}: {message}"),
                },
                _ => StoreError::Failed {
                    backend: BACKEND,
                    message: format!("{code}: {message}"),
                },
            }
        }
        _ => StoreError::Failed {
            backend: BACKEND,
            message: aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
        },
    }
}

/// A DynamoDB item as JSON: S, N, BOOL, M, L and NULL map across; other
/// types (sets, binary) become `null`, which the item parser reports.
fn item_to_json(item: &Item) -> Map<String, Value> {
    item.iter()
        .map(|(name, value)| (name.clone(), attr_to_json(value)))
        .collect()
}

fn attr_to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<u64>()
            .map(Number::from)
            .or_else(|_| n.parse::<i64>().map(Number::from))
            .ok()
            .or_else(|| n.parse::<f64>().ok().and_then(Number::from_f64))
            .map_or(Value::Null, Value::Number),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::M(m) => Value::Object(item_to_json(m)),
        AttributeValue::L(l) => Value::Array(l.iter().map(attr_to_json).collect()),
        _ => Value::Null,
    }
}

fn json_to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(json_to_attr).collect()),
        Value::Object(m) => AttributeValue::M(
            m.iter()
                .map(|(k, v)| (k.clone(), json_to_attr(v)))
                .collect(),
        ),
    }
}

/// What `create-table` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOutcome {
    Created,
    AlreadyExisted,
}

/// Why `create-table` failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(
        "table {table} exists with key schema {found}; the tenant store needs HASH businessId (S), RANGE locationId (S)"
    )]
    WrongSchema { table: String, found: String },
    #[error("table {table} is still {status} after {} s", waited.as_secs())]
    NotActive {
        table: String,
        status: String,
        waited: Duration,
    },
    #[error(transparent)]
    Aws(#[from] StoreError),
}

/// Creates the tenant table (pay per request) unless it exists, then waits
/// until it is ACTIVE and checks its key schema. Safe to run again.
pub async fn create_table(
    client: &Client,
    table: &str,
    wait: Duration,
) -> Result<TableOutcome, TableError> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type are set")
    };
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute(BUSINESS_ID))
        .attribute_definitions(attribute(LOCATION_ID))
        .key_schema(key(BUSINESS_ID, KeyType::Hash))
        .key_schema(key(LOCATION_ID, KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    let outcome = match created {
        Ok(_) => TableOutcome::Created,
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ResourceInUseException") => {
            TableOutcome::AlreadyExisted
        }
        Err(e) => return Err(classify(e, table).into()),
    };
    let started = tokio::time::Instant::now();
    let mut last_report = started;
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| classify(e, table))?;
        let Some(description) = described.table else {
            return Err(StoreError::Failed {
                backend: BACKEND,
                message: format!("DescribeTable {table} answered without a table"),
            }
            .into());
        };
        let found: Vec<String> = description
            .key_schema()
            .iter()
            .map(|k| format!("{} {}", k.key_type().as_str(), k.attribute_name()))
            .collect();
        let types: HashMap<&str, &str> = description
            .attribute_definitions()
            .iter()
            .map(|a| (a.attribute_name(), a.attribute_type().as_str()))
            .collect();
        let expected = [
            format!("HASH {BUSINESS_ID}"),
            format!("RANGE {LOCATION_ID}"),
        ];
        let strings = types.get(BUSINESS_ID) == Some(&"S") && types.get(LOCATION_ID) == Some(&"S");
        if found != expected || !strings {
            return Err(TableError::WrongSchema {
                table: table.to_owned(),
                found: found.join(", "),
            });
        }
        let status = description
            .table_status()
            .cloned()
            .unwrap_or(TableStatus::Creating);
        if status == TableStatus::Active {
            return Ok(outcome);
        }
        if started.elapsed() >= wait {
            return Err(TableError::NotActive {
                table: table.to_owned(),
                status: status.as_str().to_owned(),
                waited: wait,
            });
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            tracing::info!(
                table,
                status = status.as_str(),
                "waiting for the table to become ACTIVE"
            );
            last_report = tokio::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values_and_json_map_both_ways() {
        let json = serde_json::json!({
            "s": "x", "n": 300, "neg": -2, "f": 1.5, "b": true, "m": {"k": false}, "l": ["a", 1], "z": null
        });
        let item: Item = json
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json_to_attr(v)))
            .collect();
        assert_eq!(item["n"], AttributeValue::N("300".into()));
        assert_eq!(item["m"].as_m().unwrap()["k"], AttributeValue::Bool(false));
        assert_eq!(Value::Object(item_to_json(&item)), json);
        let odd = HashMap::from([("ss".to_owned(), AttributeValue::Ss(vec!["a".into()]))]);
        assert_eq!(item_to_json(&odd)["ss"], Value::Null);
    }
}
