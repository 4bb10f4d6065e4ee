//! The words the terminal prints, in Chinese (the default) or English
//! (`--lang en`, `GRIDCASE_LANG=en`): the same terms the centre's dashboard
//! uses, so a grid leader and a dispatcher name a step alike.

use clap::ValueEnum;
use gridcase_core::case::{CaseStatus, Face};
use gridcase_core::location::LocationSource;
use gridcase_core::op::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Lang {
    /// 中文
    #[default]
    Zh,
    /// English
    En,
}

/// One label in both languages.
macro_rules! pick {
    ($lang:expr, $zh:expr, $en:expr) => {
        match $lang {
            Lang::Zh => $zh,
            Lang::En => $en,
        }
    };
}
pub(crate) use pick;

impl Lang {
    pub fn status(self, s: CaseStatus) -> &'static str {
        use CaseStatus::*;
        match s {
            Draft => pick!(self, "草稿", "draft"),
            Submitted => pick!(self, "已提交", "submitted"),
            Received => pick!(self, "待派单", "received"),
            Dispatched => pick!(self, "已派单", "dispatched"),
            InProgress => pick!(self, "办理中", "in progress"),
            Resolved => pick!(self, "已办结待核实", "resolved"),
            Verified => pick!(self, "已核实", "verified"),
            Rated => pick!(self, "已评价", "rated"),
            Closed => pick!(self, "已结案", "closed"),
            Escalated => pick!(self, "已上报", "escalated"),
            Reopened => pick!(self, "重办", "reopened"),
            Cancelled => pick!(self, "已撤销", "cancelled"),
        }
    }

    pub fn role(self, r: Role) -> &'static str {
        match r {
            Role::GridLeader => pick!(self, "网格员", "grid leader"),
            Role::Resident => pick!(self, "群众", "resident"),
            Role::Dispatcher => pick!(self, "调度员", "dispatcher"),
            Role::Department => pick!(self, "职能部门", "department"),
            Role::Supervisor => pick!(self, "督导", "supervisor"),
            Role::System => pick!(self, "系统", "system"),
        }
    }

    pub fn face(self, f: Face) -> &'static str {
        match f {
            Face::Smiley => pick!(self, "笑脸（满意）", "smiley (satisfied)"),
            Face::Frowny => pick!(self, "苦脸（不满意）", "frowny (not satisfied)"),
        }
    }

    pub fn source(self, s: LocationSource) -> &'static str {
        match s {
            LocationSource::DeviceGps => pick!(self, "本机GPS", "device GPS"),
            LocationSource::PhotoExif => pick!(self, "照片GPS", "photo GPS"),
            LocationSource::Typed => pick!(self, "手工输入", "typed"),
            LocationSource::MapTap => pick!(self, "地图选点", "map tap"),
            LocationSource::Unknown => pick!(self, "来源未记录", "source not recorded"),
        }
    }

    pub fn category(self, c: gridcase_core::case::Category) -> &'static str {
        pick!(self, c.name_zh(), c.name_en())
    }

    /// ": " in this language's punctuation.
    pub fn colon(self) -> &'static str {
        pick!(self, "：", ": ")
    }
}
