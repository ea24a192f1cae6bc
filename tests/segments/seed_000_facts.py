"""The facts of seed 000 the reference data must hold, kept inside the repository so the suite needs
nothing beside it.

Source document: seed 000, "Financial Services Customer Success Framework"
(`../shared/seeds/000_68ff3c43b0a10183.txt` beside the clone, last_modified_date 2025-11-15). Each value
below is copied verbatim from it: the segments with their characteristics, success factors and key
metrics (name, target), the customer journey's phases, and the names of the regulations and security
standards. If the seed changes, copy the changed values here; segments/reference.py must then follow.
"""

from __future__ import annotations

from typing import NamedTuple


class SegmentFacts(NamedTuple):
    name: str
    characteristics: tuple[str, ...]
    success_factors: tuple[tuple[str, str], ...]  # (factor, description)
    key_metrics: tuple[tuple[str, str], ...]  # (metric, the target as the seed writes it)


class PhaseFacts(NamedTuple):
    name: str
    start_day: int
    end_day: int
    objective: str
    activities: tuple[str, ...]
    criteria: tuple[str, ...]


# "Financial Services Customer Segments", in the seed's order.
SEGMENTS: tuple[SegmentFacts, ...] = (
    SegmentFacts(
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
        key_metrics=(
            ("Compliance audit success rate", "100% audit pass rate"),
            ("Risk reduction achievement", "25-35% operational risk reduction"),
            ("Customer trust scores", "4.3+ NPS in financial services context"),
            ("Operational efficiency gains", "20-30% process optimization"),
        ),
    ),
    SegmentFacts(
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
        key_metrics=(
            ("Claims processing efficiency", "40-60% reduction in processing time"),
            ("Customer retention rates", "95%+ policy renewal rates"),
            ("Risk assessment accuracy", "15-25% improvement in risk prediction"),
            ("Regulatory compliance maintenance", "100% compliance audit success"),
        ),
    ),
    SegmentFacts(
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
        key_metrics=(
            ("Client satisfaction scores", "4.4+ NPS for wealth management clients"),
            ("Investment performance vs. benchmarks", "top quartile performance"),
            ("Client retention rates", "98%+ client retention in wealth management"),
            ("Compliance audit success", "100% compliance audit pass rate"),
        ),
    ),
    SegmentFacts(
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
        key_metrics=(
            ("API adoption rates", "85%+ partner API adoption"),
            ("Compliance automation efficiency", "70-80% reduction in manual compliance tasks"),
            ("Integration deployment speed", "<45 days average deployment time"),
            ("Regulatory approval success", "95%+ first-time regulatory approval"),
        ),
    ),
)

# "Financial Services Customer Journey": "### <name> Phase (<start>-<end> days)", in order.
PHASES: tuple[PhaseFacts, ...] = (
    PhaseFacts(
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
    PhaseFacts(
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
    PhaseFacts(
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

# "Regulatory Environment", the bold names of its bullets.
REGULATIONS: tuple[str, ...] = ("SEC Regulations", "FINRA Rules", "State Regulations", "Federal Regulations")

# "Security and Compliance Standards", the bold names of its bullets ("SOC 1/2" is one bullet).
SECURITY_STANDARDS: tuple[str, ...] = ("PCI DSS", "SOC 1/2", "ISO 27001", "NIST Cybersecurity Framework")
