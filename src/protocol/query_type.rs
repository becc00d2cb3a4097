//! The query types and their wire numbers.

/// The query types of the FIFO protocol, with the numbers the C peers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum QueryType {
    User = 1,
    Relay = 2,
    Password = 3,
    Host = 4,
    Alias = 5,
    Limit = 6,
    Domain = 7,
}

impl QueryType {
    /// Every query type, in wire order.
    pub const ALL: [QueryType; 7] = [
        QueryType::User,
        QueryType::Relay,
        QueryType::Password,
        QueryType::Host,
        QueryType::Alias,
        QueryType::Limit,
        QueryType::Domain,
    ];

    /// The query type for a request's type byte, `None` for anything outside 1..=7.
    pub fn from_u8(b: u8) -> Option<QueryType> {
        Self::ALL.into_iter().find(|qtype| qtype.as_u8() == b)
    }

    /// The type byte written on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The name the C server prints in its logs, single quotes included, so that log
    /// readers written for the C daemon keep working.
    pub fn log_name(self) -> &'static str {
        match self {
            QueryType::User => "'User Query'",
            QueryType::Relay => "'Relay Query'",
            QueryType::Password => "'Password Query'",
            QueryType::Host => "'Host Query'",
            QueryType::Alias => "'Alias Query'",
            QueryType::Limit => "'Domain Limits Query'",
            QueryType::Domain => "'Domain Query'",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_type_numbers_and_log_names() {
        let expected = [
            (1, "'User Query'"),
            (2, "'Relay Query'"),
            (3, "'Password Query'"),
            (4, "'Host Query'"),
            (5, "'Alias Query'"),
            (6, "'Domain Limits Query'"),
            (7, "'Domain Query'"),
        ];
        for (qtype, (number, name)) in QueryType::ALL.into_iter().zip(expected) {
            assert_eq!(qtype.as_u8(), number);
            assert_eq!(QueryType::from_u8(number), Some(qtype));
            assert_eq!(qtype.log_name(), name);
        }
        assert_eq!(QueryType::from_u8(0), None);
        for b in 8..=255u8 {
            assert_eq!(QueryType::from_u8(b), None);
        }
    }
}
