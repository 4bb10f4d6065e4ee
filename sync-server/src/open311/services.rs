//! Open311 services are our case categories: `service_code` is the category
//! code, so a 311 client files exactly the kinds of cases a grid leader does,
//! and figures by category count both.

use gridcase_core::case::Category;

use super::render::{Document, Value};

/// The optional attributes every service takes (its service definition).
/// A grid leader's case has a one-line title and the time it happened; a 311
/// client has neither field, so both are attributes with sensible defaults.
pub const TITLE_ATTRIBUTE: &str = "title";
pub const OCCURRED_AT_ATTRIBUTE: &str = "occurred_at";

/// The group a category is listed under, for clients that cluster services.
pub fn group(category: Category) -> &'static str {
    use Category::*;
    match category {
        LandDispute | NeighbourDispute | FamilyDispute | LandRequisition => "矛盾纠纷 Disputes",
        PrivateLending | FinancialLoan | GrainSubsidy | FraudPrevention => "资金 Money",
        UnpaidWages | LabourDispute | WorkInjury => "劳动 Labour",
        ConsumerDispute | TrainingRefund | MedicalDispute => "消费与服务 Consumers",
        LeakingHouse | FlatNotHandedOver | Rental => "住房 Housing",
        Environment | StairwellClutter | CollapsedManhole | SafetyHazard | TrafficAccident => {
            "公共安全与环境 Public safety and environment"
        }
        Other => "其他 Other",
    }
}

/// One entry of `services.{format}`.
pub fn service(category: Category) -> Value {
    let keywords = format!(
        "{}, {}, {}",
        category.code(),
        category.name_zh(),
        category.name_en()
    );
    Value::Object(vec![
        ("service_code", Value::str(category.code())),
        ("service_name", Value::str(category.name_zh())),
        ("description", Value::str(category.name_en())),
        ("metadata", Value::Bool(true)),
        // Answered at once: a POST returns the new request's id.
        ("type", Value::str("realtime")),
        ("keywords", Value::str(keywords)),
        ("group", Value::str(group(category))),
    ])
}

pub fn services() -> Document {
    Document::list(
        "services",
        "service",
        Category::ALL.iter().map(|&c| service(c)).collect(),
    )
}

/// `services/{service_code}.{format}`.
pub fn definition(category: Category) -> Document {
    let attribute = |code: &str, datatype: &str, order: i64, described: &str, hint: &str| {
        Value::Object(vec![
            ("variable", Value::Bool(true)),
            ("code", Value::str(code)),
            ("datatype", Value::str(datatype)),
            ("required", Value::Bool(false)),
            ("datatype_description", Value::str(hint)),
            ("order", Value::Int(order)),
            ("description", Value::str(described)),
        ])
    };
    Document {
        root: "service_definition",
        body: Value::Object(vec![
            ("service_code", Value::str(category.code())),
            (
                "attributes",
                Value::List {
                    item: "attribute",
                    items: vec![
                        attribute(
                            TITLE_ATTRIBUTE,
                            "string",
                            1,
                            "标题 Title: the problem in one line",
                            "One line, at most 100 characters; the description's first line if left out.",
                        ),
                        attribute(
                            OCCURRED_AT_ATTRIBUTE,
                            "datetime",
                            2,
                            "发生时间 When it happened",
                            "A W3C datetime such as 2025-07-01T08:00:00+08:00; the time of the request if left out.",
                        ),
                    ],
                },
            ),
        ]),
    }
}
