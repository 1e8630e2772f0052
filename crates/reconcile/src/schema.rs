//! The header row, understood: which report it is, which generation of Antom's format, and what each column
//! means. Everything downstream looks columns up by meaning, never by position, so column order and columns we
//! do not know never break the parser.
//!
//! Three generations of the same reports exist (docs/antom-reports.md): G1 (2018-2022, "Transaction Items"),
//! G2 (2023-2024) and G3 (current). A merchant on SFTP may still receive G2 files, so every name a generation
//! used is an alias of one [`Field`].

use std::fmt;

use crate::file_name::ReportFileName;
use crate::kind::ReportKind;
use crate::warning::{WarningKind, Warnings};

/// The generation of Antom's column set, told by the header's tell-tale columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Generation {
    /// 2018-2022: `pspName`, `paymentTime`, `settlementTime`, `feeAmountValue`, no `acquirer`.
    G1,
    /// 2023-2024: `acquirer`, `acquirerReferenceNo`, `originalTransactionId`.
    G2,
    /// Current: `PSP`, `ARN`, `wallet`, `status`, `transactionCreationTime`, `settlementInitiatedDate`,
    /// `paymentMethodFeeAmountValue`; no `originalTransactionId`.
    G3,
    /// None of the tell-tales: parsed by column names all the same, with a warning.
    Unknown,
}

impl fmt::Display for Generation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::G1 => "G1",
            Self::G2 => "G2",
            Self::G3 => "G3",
            Self::Unknown => "unknown generation",
        })
    }
}

/// A column the parser understands, whatever a generation called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `settlementBatchId`.
    SettlementBatchId,
    /// `customerId`: the merchant id Antom assigned.
    CustomerId,
    /// `PSP` (G2 `acquirer`).
    Acquirer,
    /// `ARN` (G2 `acquirerReferenceNo`).
    AcquirerReference,
    /// `transactionType` (details) or `summaryType` (summary).
    RowType,
    /// `transactionId`: G1/G2 the refundId of a REFUND row; G3 the paymentId per Antom's Chinese pages.
    TransactionId,
    /// `originalTransactionId` (G1/G2 only): the paymentId of the original payment.
    OriginalTransactionId,
    /// `transactionRequestId`: the merchant's refundRequestId on REFUND rows.
    TransactionRequestId,
    /// `originalTransactionRequestId`: the merchant's paymentRequestId of the forward transaction.
    OriginalTransactionRequestId,
    /// `referenceTransactionId`: the merchant's order id.
    ReferenceTransactionId,
    /// `paymentMethodType`.
    PaymentMethodType,
    /// `wallet` (G1/G2 `pspName`).
    Wallet,
    /// `status` (G3 transaction details only): the transaction's latest status.
    Status,
    /// `transactionCreationTime` (G1/G2 `paymentTime`), kept as text: its G3 format is not documented.
    TransactionTime,
    /// `settlementInitiatedDate` (G1/G2 `settlementTime`), kept as text.
    SettlementTime,
    /// `quoteCurrencyPair`, e.g. `JPY/USD`.
    QuoteCurrencyPair,
    /// `quotePrice`: the rate of the pair.
    QuotePrice,
    /// `count` (summary).
    Count,
}

impl Field {
    /// Every field, for header lookups.
    const ALL: [Field; 18] = [
        Field::SettlementBatchId,
        Field::CustomerId,
        Field::Acquirer,
        Field::AcquirerReference,
        Field::RowType,
        Field::TransactionId,
        Field::OriginalTransactionId,
        Field::TransactionRequestId,
        Field::OriginalTransactionRequestId,
        Field::ReferenceTransactionId,
        Field::PaymentMethodType,
        Field::Wallet,
        Field::Status,
        Field::TransactionTime,
        Field::SettlementTime,
        Field::QuoteCurrencyPair,
        Field::QuotePrice,
        Field::Count,
    ];

    /// The header names of this field, current generation first.
    fn names(&self) -> &'static [&'static str] {
        match self {
            Self::SettlementBatchId => &["settlementBatchId"],
            Self::CustomerId => &["customerId"],
            Self::Acquirer => &["PSP", "acquirer"],
            Self::AcquirerReference => &["ARN", "acquirerReferenceNo"],
            Self::RowType => &["transactionType", "summaryType"],
            Self::TransactionId => &["transactionId"],
            Self::OriginalTransactionId => &["originalTransactionId"],
            Self::TransactionRequestId => &["transactionRequestId"],
            Self::OriginalTransactionRequestId => &["originalTransactionRequestId"],
            Self::ReferenceTransactionId => &["referenceTransactionId"],
            Self::PaymentMethodType => &["paymentMethodType"],
            Self::Wallet => &["wallet", "pspName"],
            Self::Status => &["status"],
            Self::TransactionTime => &["transactionCreationTime", "paymentTime"],
            Self::SettlementTime => &["settlementInitiatedDate", "settlementTime"],
            Self::QuoteCurrencyPair => &["quoteCurrencyPair"],
            Self::QuotePrice => &["quotePrice"],
            Self::Count => &["count"],
        }
    }

    fn index(&self) -> usize {
        Self::ALL.iter().position(|field| field == self).unwrap_or(0)
    }
}

/// Columns Antom documents that the parser keeps but does not interpret (so they are not "unknown").
const KNOWN_UNINTERPRETED: &[&str] = &[
    "referenceMerchantId",
    "referenceStoreId",
    "orderDescription",
    "transactionUpdateTime",
    "transactionCompletionTime",
    "productCode",
    "installmentsNum",
    "issuingCountry",
    "cardBrand",
    "funding",
    "3DAuthentication",
    "3DOffered",
    "accountHolderName",
    "originalCardSummary",
    "cardNumber(Last 4 digits)",
    "issuer",
    "liabilityShift",
    "reason",
];

/// What an amount column is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AmountRole {
    /// `transactionAmountValue`: the gross amount in the transaction currency.
    Transaction,
    /// `settlementAmountValue`: the net amount in the settlement currency.
    Settlement,
    /// `convertedTransactionAmountValue` (G3): the gross amount after FX.
    Converted,
    /// A fee column; it feeds the settlement formula.
    Fee(FeeKind),
    /// An amount column we do not know as a fee (e.g. `nonGuaranteeCouponValue`): kept, not in the formula.
    Other(String),
}

/// The fee columns of Antom's settlement formula (`settlement = gross + all fees`), across generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeeKind {
    /// `paymentMethodFee` (G1/G2 `fee`): Antom's fee.
    PaymentMethod,
    /// `taxFee`.
    Tax,
    /// `processingFee`.
    Processing,
    /// `interchangeFee`.
    Interchange,
    /// `schemeFee`.
    Scheme,
    /// `acquirerMarkup`.
    AcquirerMarkup,
    /// `refundFee`.
    Refund,
    /// `disputeHandlingFee`.
    DisputeHandling,
    /// `disputeReverseFee`.
    DisputeReverse,
    /// `financingFee`.
    Financing,
    /// `rdrFee`.
    Rdr,
    /// `anticipationFee`.
    Anticipation,
    /// `riskDecisionServiceFee`.
    RiskDecisionService,
    /// `riskManagementFee`.
    RiskManagement,
    /// `cdrnFee`.
    Cdrn,
    /// `iofFee`.
    Iof,
    /// `withholdingTax`.
    WithholdingTax,
    /// `fxFee`.
    Fx,
}

impl FeeKind {
    const ALL: [FeeKind; 18] = [
        FeeKind::PaymentMethod,
        FeeKind::Tax,
        FeeKind::Processing,
        FeeKind::Interchange,
        FeeKind::Scheme,
        FeeKind::AcquirerMarkup,
        FeeKind::Refund,
        FeeKind::DisputeHandling,
        FeeKind::DisputeReverse,
        FeeKind::Financing,
        FeeKind::Rdr,
        FeeKind::Anticipation,
        FeeKind::RiskDecisionService,
        FeeKind::RiskManagement,
        FeeKind::Cdrn,
        FeeKind::Iof,
        FeeKind::WithholdingTax,
        FeeKind::Fx,
    ];

    /// The G3 stem of the column (`paymentMethodFee` for `paymentMethodFeeAmountValue`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PaymentMethod => "paymentMethodFee",
            Self::Tax => "taxFee",
            Self::Processing => "processingFee",
            Self::Interchange => "interchangeFee",
            Self::Scheme => "schemeFee",
            Self::AcquirerMarkup => "acquirerMarkup",
            Self::Refund => "refundFee",
            Self::DisputeHandling => "disputeHandlingFee",
            Self::DisputeReverse => "disputeReverseFee",
            Self::Financing => "financingFee",
            Self::Rdr => "rdrFee",
            Self::Anticipation => "anticipationFee",
            Self::RiskDecisionService => "riskDecisionServiceFee",
            Self::RiskManagement => "riskManagementFee",
            Self::Cdrn => "cdrnFee",
            Self::Iof => "iofFee",
            Self::WithholdingTax => "withholdingTax",
            Self::Fx => "fxFee",
        }
    }

    fn from_stem(stem: &str) -> Option<Self> {
        if stem.eq_ignore_ascii_case("fee") {
            return Some(Self::PaymentMethod);
        }
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(stem))
    }
}

/// An amount column and the column holding its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountColumn {
    /// What the amount is.
    pub role: AmountRole,
    /// Index of the value column.
    pub value: usize,
    /// Index of the currency column.
    pub currency: usize,
}

/// The header, understood. Shared by every row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    kind: ReportKind,
    generation: Generation,
    columns: Vec<String>,
    fields: [Option<usize>; Field::ALL.len()],
    amounts: Vec<AmountColumn>,
    unknown: Vec<usize>,
}

/// Why a header cannot be used; the reader turns it into a `ReconcileError` naming the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SchemaProblem {
    DuplicateColumn(String),
    MissingColumn(&'static str),
}

impl Schema {
    /// Understands a header row. `file_name` helps only where the header cannot tell (transaction vs settlement
    /// details of a generation without settlement times); a disagreement is a warning, the header wins.
    pub(crate) fn from_header<'a>(
        header: impl Iterator<Item = &'a str>,
        file_name: Option<&ReportFileName>,
        warnings: &mut Warnings,
    ) -> Result<Self, SchemaProblem> {
        let columns: Vec<String> = header.map(|name| name.trim().to_owned()).collect();
        for (index, name) in columns.iter().enumerate() {
            if columns[..index]
                .iter()
                .any(|earlier| earlier.eq_ignore_ascii_case(name))
            {
                return Err(SchemaProblem::DuplicateColumn(name.clone()));
            }
        }
        let find = |name: &str| columns.iter().position(|column| column.eq_ignore_ascii_case(name));
        let mut fields = [None; Field::ALL.len()];
        for field in Field::ALL {
            let found: Vec<(&str, usize)> = field
                .names()
                .iter()
                .filter_map(|name| find(name).map(|index| (*name, index)))
                .collect();
            if let [(used, index), shadowed @ ..] = found.as_slice() {
                fields[field.index()] = Some(*index);
                for (name, _) in shadowed {
                    warnings.add(
                        WarningKind::ShadowedColumn,
                        name,
                        1,
                        format!("column {name} ignored: {used} carries the same field"),
                    );
                }
            }
        }
        let kind = detect_kind(&columns, &fields, file_name, warnings);
        if fields[Field::RowType.index()].is_none() {
            return Err(SchemaProblem::MissingColumn(match kind {
                ReportKind::SettlementSummary => "summaryType",
                _ => "transactionType",
            }));
        }
        let generation = detect_generation(&find);
        if generation == Generation::Unknown {
            warnings.add(
                WarningKind::UnknownGeneration,
                "",
                1,
                "the header has none of the columns that tell G1, G2 or G3 apart; columns read by name".to_owned(),
            );
        }
        let (amounts, currency_columns) = amount_columns(&columns, warnings);
        let unknown = unknown_columns(&columns, &fields, &amounts, &currency_columns, warnings);
        Ok(Self {
            kind,
            generation,
            columns,
            fields,
            amounts,
            unknown,
        })
    }

    /// The report kind.
    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    /// The format generation.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The header's column names, in file order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Index of the column carrying `field`, if the header has one.
    pub fn field(&self, field: Field) -> Option<usize> {
        self.fields[field.index()]
    }

    /// The amount columns with their currency columns.
    pub fn amounts(&self) -> &[AmountColumn] {
        &self.amounts
    }

    /// Indices of columns the parser does not know; their cells are kept on every row.
    pub fn unknown_columns(&self) -> &[usize] {
        &self.unknown
    }

    /// The name of column `index` (or `#n`, 1-based, past the header).
    pub fn column_name(&self, index: usize) -> String {
        self.columns
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("#{}", index + 1))
    }

    /// Whether a REFUND row's `transactionId` is Antom's refundId, with the paymentId in
    /// `originalTransactionId` (G1/G2). Without that column (G3) the Chinese G3 pages say `transactionId` is
    /// the paymentId; the G2 pages say refundId; it is treated as either.
    pub fn transaction_id_is_refund_id(&self) -> bool {
        self.field(Field::OriginalTransactionId).is_some()
    }
}

fn detect_kind(
    columns: &[String],
    fields: &[Option<usize>; Field::ALL.len()],
    file_name: Option<&ReportFileName>,
    warnings: &mut Warnings,
) -> ReportKind {
    let has = |name: &str| columns.iter().any(|column| column.eq_ignore_ascii_case(name));
    let from_name = file_name.map(ReportFileName::kind);
    let from_header = if has("summaryType") {
        Some(ReportKind::SettlementSummary)
    } else if has("status") {
        // Only G3 transaction details carry the latest status.
        Some(ReportKind::TransactionDetails)
    } else if fields[Field::SettlementTime.index()].is_some() {
        Some(ReportKind::SettlementDetails)
    } else {
        None
    };
    match (from_header, from_name) {
        (Some(header), Some(name)) if header != name => {
            warnings.add(
                WarningKind::KindDiffersFromFileName,
                "",
                1,
                format!("the file name says {name}, the header says {header}; read as {header}"),
            );
            header
        }
        (Some(header), _) => header,
        (None, Some(name)) => name,
        (None, None) => ReportKind::TransactionDetails,
    }
}

fn detect_generation(find: &impl Fn(&str) -> Option<usize>) -> Generation {
    let any = |names: &[&str]| names.iter().any(|name| find(name).is_some());
    if any(&[
        "PSP",
        "ARN",
        "wallet",
        "status",
        "transactionCreationTime",
        "settlementInitiatedDate",
        "convertedTransactionAmountValue",
        "paymentMethodFeeAmountValue",
    ]) {
        Generation::G3
    } else if any(&["acquirer", "acquirerReferenceNo"]) {
        Generation::G2
    } else if any(&["pspName", "paymentTime", "settlementTime", "feeAmountValue"]) {
        Generation::G1
    } else {
        Generation::Unknown
    }
}

/// Pairs every amount column with its currency column: `<x>AmountValue` with `<x>Currency`, `<x>Value` with
/// `<x>Currency`, `<x>` with `<x>Currency` (`disputeHandlingFee`), and G3's `convertedTransactionAmountValue`
/// with `convertedCurrency`. Returns the amounts and the indices of the currency columns used.
fn amount_columns(columns: &[String], warnings: &mut Warnings) -> (Vec<AmountColumn>, Vec<usize>) {
    let find = |name: &str| columns.iter().position(|column| column.eq_ignore_ascii_case(name));
    let mut amounts = Vec::new();
    let mut currencies = Vec::new();
    for (index, name) in columns.iter().enumerate() {
        let stem = strip_suffix_ignore_case(name, "AmountValue")
            .or_else(|| strip_suffix_ignore_case(name, "Value"))
            .unwrap_or(name);
        let candidates = [format!("{stem}Currency"), converted_currency(stem)];
        let currency = candidates
            .iter()
            .filter(|candidate| !candidate.is_empty())
            .find_map(|c| find(c));
        let looks_like_amount = stem.len() != name.len();
        let Some(currency) = currency else {
            if looks_like_amount {
                warnings.add(
                    WarningKind::AmountWithoutCurrency,
                    name,
                    1,
                    format!("column {name} looks like an amount but has no currency column; kept as text"),
                );
            }
            continue;
        };
        if currency == index {
            continue;
        }
        let role = amount_role(stem);
        if let AmountRole::Other(other) = &role {
            warnings.add(
                WarningKind::UnknownAmountColumn,
                other,
                1,
                format!("amount column {name} is not a fee we know; kept, and left out of the settlement formula"),
            );
        }
        amounts.push(AmountColumn {
            role,
            value: index,
            currency,
        });
        currencies.push(currency);
    }
    (amounts, currencies)
}

fn converted_currency(stem: &str) -> String {
    if stem.eq_ignore_ascii_case("convertedTransaction") {
        "convertedCurrency".to_owned()
    } else {
        String::new()
    }
}

fn amount_role(stem: &str) -> AmountRole {
    if stem.eq_ignore_ascii_case("transaction") {
        AmountRole::Transaction
    } else if stem.eq_ignore_ascii_case("settlement") {
        AmountRole::Settlement
    } else if stem.eq_ignore_ascii_case("convertedTransaction") {
        AmountRole::Converted
    } else if let Some(fee) = FeeKind::from_stem(stem) {
        AmountRole::Fee(fee)
    } else {
        AmountRole::Other(stem.to_owned())
    }
}

fn strip_suffix_ignore_case<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let split = name.len().checked_sub(suffix.len())?;
    let (stem, tail) = (name.get(..split)?, name.get(split..)?);
    (tail.eq_ignore_ascii_case(suffix) && !stem.is_empty()).then_some(stem)
}

fn unknown_columns(
    columns: &[String],
    fields: &[Option<usize>; Field::ALL.len()],
    amounts: &[AmountColumn],
    currency_columns: &[usize],
    warnings: &mut Warnings,
) -> Vec<usize> {
    let mut unknown = Vec::new();
    for (index, name) in columns.iter().enumerate() {
        let known = fields.contains(&Some(index))
            || amounts.iter().any(|amount| amount.value == index)
            || currency_columns.contains(&index)
            || Field::ALL
                .iter()
                .any(|field| field.names().iter().any(|n| n.eq_ignore_ascii_case(name)))
            || KNOWN_UNINTERPRETED.iter().any(|known| known.eq_ignore_ascii_case(name));
        if !known {
            warnings.add(
                WarningKind::UnknownColumn,
                name,
                1,
                format!("column {name:?} is not one Antom documents; its values are kept on every row"),
            );
            unknown.push(index);
        }
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(header: &str) -> (Schema, Warnings) {
        let mut warnings = Warnings::default();
        let schema = Schema::from_header(header.split(','), None, &mut warnings).unwrap();
        (schema, warnings)
    }

    #[test]
    fn generations_and_kinds_come_from_the_header() {
        let (g3, _) = schema("customerId,PSP,transactionId,transactionRequestId,transactionType,status");
        assert_eq!(
            (g3.kind(), g3.generation()),
            (ReportKind::TransactionDetails, Generation::G3)
        );
        assert!(!g3.transaction_id_is_refund_id());
        let (g2, _) =
            schema("settlementBatchId,acquirer,transactionId,originalTransactionId,transactionType,settlementTime");
        assert_eq!(
            (g2.kind(), g2.generation()),
            (ReportKind::SettlementDetails, Generation::G2)
        );
        assert!(g2.transaction_id_is_refund_id());
        let (g1, _) = schema("settlementBatchId,summaryType,settlementTime,count,feeAmountValue,feeCurrency");
        assert_eq!(
            (g1.kind(), g1.generation()),
            (ReportKind::SettlementSummary, Generation::G1)
        );
        let (unknown, warnings) = schema("transactionType,transactionId");
        assert_eq!(unknown.generation(), Generation::Unknown);
        assert!(
            warnings
                .iter()
                .any(|warning| warning.kind == WarningKind::UnknownGeneration)
        );
    }

    #[test]
    fn amounts_pair_with_their_currencies_and_fees_are_named() {
        let (schema, warnings) = schema(
            "transactionType,transactionAmountValue,transactionCurrency,feeAmountValue,feeCurrency,\
             disputeHandlingFee,disputeHandlingFeeCurrency,convertedTransactionAmountValue,convertedCurrency,\
             nonGuaranteeCouponValue,nonGuaranteeCouponCurrency,mysteryAmountValue",
        );
        let roles: Vec<(AmountRole, usize, usize)> = schema
            .amounts()
            .iter()
            .map(|amount| (amount.role.clone(), amount.value, amount.currency))
            .collect();
        assert_eq!(
            roles,
            vec![
                (AmountRole::Transaction, 1, 2),
                (AmountRole::Fee(FeeKind::PaymentMethod), 3, 4),
                (AmountRole::Fee(FeeKind::DisputeHandling), 5, 6),
                (AmountRole::Converted, 7, 8),
                (AmountRole::Other("nonGuaranteeCoupon".into()), 9, 10),
            ]
        );
        let kinds: Vec<WarningKind> = warnings.iter().map(|warning| warning.kind).collect();
        assert!(kinds.contains(&WarningKind::UnknownAmountColumn));
        assert!(kinds.contains(&WarningKind::AmountWithoutCurrency));
        assert_eq!(schema.unknown_columns(), &[11]);
    }

    #[test]
    fn duplicate_and_missing_columns_are_refused() {
        let mut warnings = Warnings::default();
        assert_eq!(
            Schema::from_header("transactionType,PSP,psp".split(','), None, &mut warnings),
            Err(SchemaProblem::DuplicateColumn("psp".into()))
        );
        assert_eq!(
            Schema::from_header("summaryType2,count".split(','), None, &mut warnings),
            Err(SchemaProblem::MissingColumn("transactionType"))
        );
    }

    #[test]
    fn two_names_of_one_field_use_the_current_one_and_warn() {
        let (schema, warnings) = schema("transactionType,acquirer,PSP");
        assert_eq!(schema.field(Field::Acquirer), Some(2));
        assert!(
            warnings
                .iter()
                .any(|warning| warning.kind == WarningKind::ShadowedColumn)
        );
    }
}
