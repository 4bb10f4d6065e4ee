//! The kinds of cases named in the articles. A fixed list so that figures by
//! category add up across devices, the server and Open311.

use serde::{Deserialize, Serialize};

macro_rules! categories {
    ($($variant:ident => $code:literal, $zh:literal, $en:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Category {
            $($variant,)*
        }

        impl Category {
            pub const ALL: &'static [Category] = &[$(Category::$variant,)*];

            /// The stable code used in storage, the wire and Open311 service codes.
            pub fn code(self) -> &'static str {
                match self { $(Category::$variant => $code,)* }
            }
            pub fn name_zh(self) -> &'static str {
                match self { $(Category::$variant => $zh,)* }
            }
            pub fn name_en(self) -> &'static str {
                match self { $(Category::$variant => $en,)* }
            }
            pub fn parse(code: &str) -> Option<Category> {
                match code { $($code => Some(Category::$variant),)* _ => None }
            }
        }
    };
}

categories! {
    LandDispute => "land_dispute", "土地纠纷", "Land dispute";
    PrivateLending => "private_lending", "民间借贷", "Private lending";
    Environment => "environment", "环保问题", "Environmental problem";
    LeakingHouse => "leaking_house", "房屋漏水", "Leaking house";
    GrainSubsidy => "grain_subsidy", "粮补直补款", "Grain subsidy payment";
    StairwellClutter => "stairwell_clutter", "楼道杂物", "Clutter in stairwell";
    CollapsedManhole => "collapsed_manhole", "下水井塌陷", "Collapsed manhole or road";
    NeighbourDispute => "neighbour_dispute", "邻里纠纷", "Neighbour dispute";
    FamilyDispute => "family_dispute", "家事纠纷", "Family dispute";
    UnpaidWages => "unpaid_wages", "拖欠工资", "Unpaid wages";
    LabourDispute => "labour_dispute", "劳动争议", "Labour dispute";
    ConsumerDispute => "consumer_dispute", "消费纠纷", "Consumer dispute";
    TrainingRefund => "training_refund", "教培机构退费", "Training school refund";
    FlatNotHandedOver => "flat_not_handed_over", "新房交房", "New flat not handed over";
    MedicalDispute => "medical_dispute", "医疗纠纷", "Medical dispute";
    TrafficAccident => "traffic_accident", "交通事故", "Traffic accident";
    FinancialLoan => "financial_loan", "金融借款", "Financial loan";
    LandRequisition => "land_requisition", "征地拆迁", "Land requisition and demolition";
    Rental => "rental", "房管租赁", "Rental";
    WorkInjury => "work_injury", "工伤赔偿", "Work injury compensation";
    SafetyHazard => "safety_hazard", "安全隐患", "Public safety hazard";
    FraudPrevention => "fraud_prevention", "反诈", "Fraud prevention";
    Other => "other", "其他", "Other";
}

impl Category {
    /// The category a person typed: its code (`leaking_house`), its Chinese
    /// name (`房屋漏水`) or its English name (`Leaking house`, any case).
    pub fn find(text: &str) -> Option<Category> {
        let text = text.trim();
        Category::parse(text).or_else(|| {
            Category::ALL.iter().copied().find(|c| {
                c.name_zh() == text
                    || c.name_en().eq_ignore_ascii_case(text)
                    || c.code().eq_ignore_ascii_case(text)
            })
        })
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_is_found_by_code_or_by_either_name() {
        assert_eq!(
            Category::find("leaking_house"),
            Some(Category::LeakingHouse)
        );
        assert_eq!(Category::find("房屋漏水"), Some(Category::LeakingHouse));
        assert_eq!(
            Category::find(" leaking house "),
            Some(Category::LeakingHouse)
        );
        assert_eq!(Category::find("漏水"), None);
        for &c in Category::ALL {
            assert_eq!(Category::find(c.name_zh()), Some(c));
        }
    }

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &c in Category::ALL {
            assert!(seen.insert(c.code()));
            assert_eq!(Category::parse(c.code()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.code())
            );
        }
    }
}
