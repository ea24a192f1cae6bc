"""The financial-services reference framework (shared/seeds/000_*), as data.

Every string below is the seed's own wording; tests/segments/test_reference_data.py parses the seed
file and checks this module value by value, so an edit to either is caught. Numeric bands are the
machine-readable reading of each target: `comparator` says how a measured value is judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Kpi:
    code: str
    name: str  # the seed's metric name, e.g. "Customer retention rates"
    target_text: str  # the seed's target, verbatim, e.g. "95%+ policy renewal rates"
    unit: str
    direction: str  # "higher" | "lower"
    comparator: str  # gte | lt | eq | between | top_quartile
    target_low: Decimal | None
    target_high: Decimal | None
    weight: Decimal = Decimal("25")


@dataclass(frozen=True)
class SegmentSpec:
    code: str
    name: str
    characteristics: tuple[str, ...]
    success_factors: tuple[tuple[str, str], ...]
    kpis: tuple[Kpi, ...]


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    start_day: int
    end_day: int
    objective: str
    activities: tuple[str, ...]
    criteria: tuple[str, ...]


@dataclass(frozen=True)
class FrameworkSpec:
    code: str
    name: str
    description: str
    requirements: tuple[tuple[str, str], ...] = field(default=())


D = Decimal

SEGMENTS: tuple[SegmentSpec, ...] = (
    SegmentSpec(
        code="bank",
        name="Banks and Credit Unions",
        characteristics=(
            "Large-scale financial operations with extensive regulatory oversight",
            "Complex integration requirements with legacy financial systems",
            "High transaction volumes and data security requirements",
            "Strong focus on compliance, risk management, and customer trust",
        ),
        success_factors=(
            ("Regulatory Compliance", "Comprehensive compliance with banking regulations"),
            ("Risk Management", "Effective risk assessment and mitigation strategies"),
            ("Security Excellence", "Robust data security and fraud prevention"),
            ("Operational Efficiency", "Streamlined financial operations and cost management"),
        ),
        kpis=(
            Kpi(
                "compliance_audit_success",
                "Compliance audit success rate",
                "100% audit pass rate",
                "% audits passed",
                "higher",
                "eq",
                D("100"),
                D("100"),
            ),
            Kpi(
                "risk_reduction",
                "Risk reduction achievement",
                "25-35% operational risk reduction",
                "% operational risk reduction",
                "higher",
                "between",
                D("25"),
                D("35"),
            ),
            Kpi(
                "customer_trust",
                "Customer trust scores",
                "4.3+ NPS in financial services context",
                "trust score (NPS, financial services)",
                "higher",
                "gte",
                D("4.3"),
                None,
            ),
            Kpi(
                "operational_efficiency",
                "Operational efficiency gains",
                "20-30% process optimization",
                "% process optimization",
                "higher",
                "between",
                D("20"),
                D("30"),
            ),
        ),
    ),
    SegmentSpec(
        code="insurer",
        name="Insurance Companies",
        characteristics=(
            "Policy management and claims processing focus",
            "Risk assessment and underwriting expertise requirements",
            "Regulatory compliance across multiple jurisdictions",
            "Customer lifecycle management across policy periods",
        ),
        success_factors=(
            ("Claims Processing", "Streamlined claims processing and customer communication"),
            ("Risk Assessment", "Accurate risk assessment and pricing optimization"),
            ("Customer Engagement", "Proactive customer engagement and relationship management"),
            ("Regulatory Compliance", "Insurance industry-specific compliance management"),
        ),
        kpis=(
            Kpi(
                "claims_processing_efficiency",
                "Claims processing efficiency",
                "40-60% reduction in processing time",
                "% reduction in processing time",
                "higher",
                "between",
                D("40"),
                D("60"),
            ),
            Kpi(
                "policy_renewal",
                "Customer retention rates",
                "95%+ policy renewal rates",
                "% policies renewed",
                "higher",
                "gte",
                D("95"),
                None,
            ),
            Kpi(
                "risk_assessment_accuracy",
                "Risk assessment accuracy",
                "15-25% improvement in risk prediction",
                "% improvement in risk prediction",
                "higher",
                "between",
                D("15"),
                D("25"),
            ),
            Kpi(
                "regulatory_compliance",
                "Regulatory compliance maintenance",
                "100% compliance audit success",
                "% audits passed",
                "higher",
                "eq",
                D("100"),
                D("100"),
            ),
        ),
    ),
    SegmentSpec(
        code="wealth",
        name="Investment Firms and Wealth Management",
        characteristics=(
            "Investment performance and client relationship focus",
            "Complex financial products and service requirements",
            "High-touch client relationship management needs",
            "Regulatory compliance for investment advisory services",
        ),
        success_factors=(
            ("Investment Performance", "Client investment performance and goal achievement"),
            ("Client Relationships", "High-touch relationship management and communication"),
            ("Product Expertise", "Financial product knowledge and recommendation accuracy"),
            ("Compliance Excellence", "Investment advisory compliance and fiduciary responsibility"),
        ),
        kpis=(
            Kpi(
                "client_satisfaction",
                "Client satisfaction scores",
                "4.4+ NPS for wealth management clients",
                "satisfaction score (NPS, wealth management)",
                "higher",
                "gte",
                D("4.4"),
                None,
            ),
            Kpi(
                "investment_performance",
                "Investment performance vs. benchmarks",
                "top quartile performance",
                "percentile rank vs. benchmark",
                "higher",
                "top_quartile",
                D("75"),
                None,
            ),
            Kpi(
                "client_retention",
                "Client retention rates",
                "98%+ client retention in wealth management",
                "% clients retained",
                "higher",
                "gte",
                D("98"),
                None,
            ),
            Kpi(
                "compliance_audit_success",
                "Compliance audit success",
                "100% compliance audit pass rate",
                "% audits passed",
                "higher",
                "eq",
                D("100"),
                D("100"),
            ),
        ),
    ),
    SegmentSpec(
        code="fintech",
        name="Fintech Companies",
        characteristics=(
            "Technology-driven financial services innovation",
            "Rapid scaling and market expansion requirements",
            "Integration with traditional financial systems",
            "Regulatory technology (RegTech) and compliance automation",
        ),
        success_factors=(
            ("API Integration", "Robust API capabilities and developer experience"),
            ("Compliance Automation", "RegTech solutions and compliance automation"),
            ("Innovation Partnership", "Collaborative innovation and feature development"),
            ("Market Expansion", "Support for regulatory compliance across markets"),
        ),
        kpis=(
            Kpi(
                "api_adoption",
                "API adoption rates",
                "85%+ partner API adoption",
                "% partners using the API",
                "higher",
                "gte",
                D("85"),
                None,
            ),
            Kpi(
                "compliance_automation",
                "Compliance automation efficiency",
                "70-80% reduction in manual compliance tasks",
                "% reduction in manual compliance tasks",
                "higher",
                "between",
                D("70"),
                D("80"),
            ),
            Kpi(
                "integration_deployment_speed",
                "Integration deployment speed",
                "<45 days average deployment time",
                "days (average deployment time)",
                "lower",
                "lt",
                None,
                D("45"),
            ),
            Kpi(
                "regulatory_approval",
                "Regulatory approval success",
                "95%+ first-time regulatory approval",
                "% first-time approvals",
                "higher",
                "gte",
                D("95"),
                None,
            ),
        ),
    ),
)

JOURNEY_NAME = "Financial Services Customer Journey"
PHASES: tuple[PhaseSpec, ...] = (
    PhaseSpec(
        name="Compliance Assessment",
        start_day=0,
        end_day=45,
        objective="Ensure regulatory compliance and risk assessment completion",
        activities=(
            "Regulatory compliance assessment and gap analysis",
            "Risk assessment and mitigation planning",
            "Security audit and data protection evaluation",
            "Regulatory approval and authorization process",
        ),
        criteria=(
            "Regulatory compliance certification achieved",
            "Risk assessment completed with mitigation plans",
            "Security audit passed with acceptable risk levels",
            "Regulatory approvals obtained for all required activities",
        ),
    ),
    PhaseSpec(
        name="Integration and Implementation",
        start_day=45,
        end_day=120,
        objective="Integrate with financial systems and optimize workflows",
        activities=(
            "Financial system integration and testing",
            "Workflow optimization and process improvement",
            "Staff training on financial features and compliance requirements",
            "Customer communication and support setup",
        ),
        criteria=(
            "Financial system integration completed successfully",
            "Workflow efficiency improvements measured and validated",
            "Staff adoption and proficiency achieved",
            "Customer support processes optimized",
        ),
    ),
    PhaseSpec(
        name="Performance Optimization",
        start_day=120,
        end_day=240,
        objective="Demonstrate financial performance improvements and ROI",
        activities=(
            "Financial performance tracking and analysis",
            "ROI measurement and value demonstration",
            "Risk mitigation effectiveness evaluation",
            "Success story development and documentation",
        ),
        criteria=(
            "Measurable financial performance improvements",
            "Positive ROI demonstration (target: 4:1 ROI within 18 months)",
            "Risk mitigation effectiveness validated",
            "Customer advocacy and reference program participation",
        ),
    ),
)

# Frameworks named in seed 000 (Regulatory Environment; Security and Compliance Standards), plus GDPR
# and CCPA which DESIGN.md adds for clients holding EU / California personal data.
FRAMEWORKS: tuple[FrameworkSpec, ...] = (
    FrameworkSpec(
        "sec",
        "SEC Regulations",
        "Securities and Exchange Commission compliance requirements",
        (("SEC-17a-4", "Books and records retention"), ("SEC-S-P", "Regulation S-P privacy safeguards")),
    ),
    FrameworkSpec(
        "finra",
        "FINRA Rules",
        "Financial Industry Regulatory Authority guidelines and standards",
        (("FINRA-3110", "Supervision"), ("FINRA-4370", "Business continuity plans")),
    ),
    FrameworkSpec(
        "state",
        "State Regulations",
        "State-specific financial services regulations and licensing",
        (("STATE-LIC", "State licensing current"), ("NYDFS-500", "NYDFS cybersecurity regulation")),
    ),
    FrameworkSpec(
        "federal",
        "Federal Regulations",
        "Federal banking and financial services oversight",
        (("GLBA", "Gramm-Leach-Bliley safeguards rule"), ("BSA-AML", "Bank Secrecy Act / AML program")),
    ),
    FrameworkSpec(
        "pci-dss",
        "PCI DSS",
        "Payment Card Industry Data Security Standard compliance",
        (("PCI-AOC", "Attestation of compliance"),),
    ),
    FrameworkSpec("soc1", "SOC 1", "Financial services control audits (ICFR)", (("SOC1-T2", "SOC 1 Type II report"),)),
    FrameworkSpec("soc2", "SOC 2", "Financial services security audits", (("SOC2-T2", "SOC 2 Type II report"),)),
    FrameworkSpec(
        "iso27001",
        "ISO 27001",
        "Information security management system standards",
        (("ISO27001-CERT", "ISO 27001 certificate"),),
    ),
    FrameworkSpec(
        "nist-csf",
        "NIST Cybersecurity Framework",
        "Financial services cybersecurity standards",
        (("NIST-CSF-PROFILE", "Current NIST CSF profile and gap assessment"),),
    ),
    FrameworkSpec(
        "gdpr", "GDPR", "EU General Data Protection Regulation", (("GDPR-DPA", "Data processing agreement"),)
    ),
    FrameworkSpec("ccpa", "CCPA", "California Consumer Privacy Act", (("CCPA-NOTICE", "Consumer privacy notice"),)),
)
