# ruff: noqa: E501  (the label table is data)
"""Write fabric_dev.jsonl: system-prompt set-ups ("You are an expert writer … write an essay on the input") to tune on (round 13).

Round 12's held-out fresh_persona set (awesome-chatgpt-prompts) showed set-ups that are writing jobs missing writer,
and no tuning set held many set-ups written as system prompts. Source: danielmiessler/fabric (MIT), every
``data/patterns/*/system.md`` at commit 272f04dd (2025-07-19) — 225 system prompts people run over their own input
("# IDENTITY and PURPOSE You are …", steps, output instructions): essays, emails, summaries, extractions, code
reviews, threat models, flash cards. Not awesome-chatgpt-prompts, and no other set of this folder uses it.

Labelled pattern by pattern by POLICY.md (round 13's helper "routes", from each pattern's purpose) before anything
routed them; a set-up is routed as its request is: composing prose (essays, emails, posts, keynotes, user-facing
reports) writer; code, configs, diagrams-as-code, detection rules, LaTeX source engineer; extracting, tagging,
converting or cleaning the input utility (research too where the extraction is judgement, as for "insights");
analysing or rating the input research, utility; summaries of the input utility, writer, research; advice and
Socratic dialogue research, chat. ``x``: left out (fabric's own help patterns, a blank template, an image prompt).
Then, as mkshell_dev.py: candidates within a word TF-IDF cosine of 0.5 of any line of this folder (held-out sets
included; matches counted, not read), a role or config example, or an earlier-kept pattern are dropped.
**May be tuned on.** Run: python mkfabric_dev.py FABRIC_GIT_DIR > fabric_dev.jsonl
"""
from __future__ import annotations

import json
import subprocess
import sys

from mkfresh_common import AGENTS, fresh
from mkshell_dev import everything_known

COMMIT = "272f04dd3278f99bee49e94a7747b54708745a5d"
LABELS = """
agility_story ew|ai rc|analyze_answers ru|analyze_bill r|analyze_bill_short r|analyze_candidates r|analyze_cfp_submission ru|
analyze_claims r|analyze_comments ru|analyze_debate ru|analyze_email_headers er|analyze_incident ur|analyze_interviewer_techniques r|
analyze_logs e|analyze_malware er|analyze_military_strategy r|analyze_mistakes r|analyze_paper ru|analyze_paper_simple ru|
analyze_patent r|analyze_personality r|analyze_presentation r|analyze_product_feedback ur|analyze_proposition r|analyze_prose wru|
analyze_prose_json wru|analyze_prose_pinker wr|analyze_risk r|analyze_sales_call ru|analyze_spiritual_text r|analyze_tech_impact r|
analyze_terraform_plan e|analyze_threat_report ru|analyze_threat_report_cmds ue|analyze_threat_report_trends ru|
answer_interview_question rw|apply_ul_tags ur|ask_secure_by_design_questions er|ask_uncle_duke e|capture_thinkers_work r|
check_agreement urw|clean_text u|coding_master er|compare_and_contrast r|convert_to_markdown u|create_5_sentence_summary uwr|
create_academic_paper we|create_ai_jobs_analysis r|create_aphorisms rw|create_art_prompt w|create_better_frame wr|
create_coding_feature e|create_coding_project e|create_command e|create_cyber_summary uwr|create_design_document ew|
create_diy rw|create_excalidraw_visualization eu|create_flash_cards wu|create_formal_email w|create_git_diff_commit e|
create_graph_from_input eu|create_hormozi_offer wr|create_idea_compass wr|create_investigation_visualization e|create_keynote w|
create_loe_document ew|create_logo x|create_markmap_visualization eu|create_mermaid_visualization eu|
create_mermaid_visualization_for_github eu|create_micro_summary uwr|create_mnemonic_phrases w|create_network_threat_landscape ru|
create_newsletter_entry w|create_npc wc|create_pattern we|create_prd we|create_prediction_block ur|create_quiz wr|
create_reading_plan rw|create_recursive_outline wr|create_report_finding we|create_rpg_summary wu|create_security_update w|
create_show_intro w|create_sigma_rules e|create_story_explanation wu|create_stride_threat_model er|create_summary uwr|
create_tags u|create_threat_scenarios rw|create_ttrc_graph eu|create_ttrc_narrative w|create_upgrade_pack ur|create_user_story ew|
create_video_chapters u|create_visualization uw|dialog_with_socrates cr|enrich_blog_post uw|explain_code e|explain_docs er|
explain_math re|explain_project er|explain_terms ru|export_data_as_csv u|extract_algorithm_update_recommendations ur|
extract_alpha ur|extract_article_wisdom ur|extract_book_ideas r|extract_book_recommendations r|extract_business_ideas ur|
extract_controversial_ideas ur|extract_core_message ur|extract_ctf_writeup er|extract_domains u|extract_extraordinary_claims ur|
extract_ideas ur|extract_insights ur|extract_insights_dm ur|extract_instructions u|extract_jokes u|extract_latest_video u|
extract_main_activities u|extract_main_idea ur|extract_mcp_servers u|extract_most_redeeming_thing r|extract_patterns ur|
extract_poc eu|extract_predictions u|extract_primary_problem ru|extract_primary_solution ru|extract_product_features u|
extract_questions u|extract_recipe u|extract_recommendations u|extract_references u|extract_skills u|extract_song_meaning r|
extract_sponsors u|extract_videoid u|extract_wisdom ur|extract_wisdom_agents ur|extract_wisdom_dm ur|extract_wisdom_nometa ur|
find_female_life_partner wr|find_hidden_message r|find_logical_fallacies ru|generate_code_rules e|get_wow_per_minute ru|
get_youtube_rss ue|humanize w|identify_dsrp_distinctions r|identify_dsrp_perspectives r|identify_dsrp_relationships r|
identify_dsrp_systems r|identify_job_stories ew|improve_academic_writing wu|improve_prompt we|improve_report_finding we|
improve_writing wu|judge_output e|label_and_rate ur|md_callout u|official_pattern_template x|prepare_7s_strategy rw|
provide_guidance rc|rate_ai_response ru|rate_ai_result ru|rate_content ur|rate_value ru|raw_query x|recommend_artists r|
recommend_pipeline_upgrades er|recommend_talkpanel_topics w|refine_design_document ew|review_code e|review_design er|
sanitize_broken_html_to_markdown ue|show_fabric_options_markmap x|solve_with_cot r|suggest_pattern x|summarize uwr|
summarize_board_meeting wu|summarize_debate ru|summarize_git_changes ew|summarize_git_diff e|summarize_lecture uwr|
summarize_legislation ru|summarize_meeting uw|summarize_micro uwr|summarize_newsletter u|summarize_paper ru|summarize_prompt u|
summarize_pull-requests e|summarize_rpg_session wu|t_analyze_challenge_handling r|t_check_dunning_kruger r|t_check_metrics r|
t_create_h3_career rw|t_create_opening_sentences w|t_describe_life_outlook wr|t_extract_intro_sentences w|t_extract_panel_topics wr|
t_find_blindspots r|t_find_negative_thinking rc|t_find_neglected_goals r|t_give_encouragement cw|t_red_team_thinking r|
t_threat_model_plans r|t_visualize_mission_goals_projects ue|t_year_in_review w|to_flashcards wu|transcribe_minutes uw|
translate uw|tweet w|write_essay w|write_essay_pg w|write_hackerone_report we|write_latex e|write_micro_essay w|
write_nuclei_template_rule e|write_pull-request ew|write_semgrep_rule e|youtube_summary uwr
"""


def table() -> dict[str, list[str]]:
    pairs = (item.split() for item in LABELS.replace("\n", "").split("|") if item.strip())
    return {k: [AGENTS[c] for c in v if c != "x"] for k, v in pairs}


def patterns(git_dir: str) -> dict[str, str]:
    names = subprocess.run(["git", "-C", git_dir, "ls-tree", "-r", "--name-only", COMMIT, "data/patterns/"],
                           check=True, capture_output=True, text=True).stdout.split()
    out = {}
    for path in names:
        parts = path.split("/")
        if len(parts) == 4 and parts[3] == "system.md":
            text = subprocess.run(["git", "-C", git_dir, "show", f"{COMMIT}:{path}"],
                                  check=True, capture_output=True, text=True).stdout
            out[parts[2]] = text.strip()
    return out


def main() -> None:
    found = patterns(sys.argv[1])
    labels = table()
    assert set(found) == set(labels), sorted(set(found) ^ set(labels))
    known = everything_known()
    kept: list[str] = []
    dropped = 0
    for name in sorted(found):
        if not labels[name]:
            continue
        if not fresh([found[name]], known + kept)[0]:
            dropped += 1
            continue
        kept.append(found[name])
        print(json.dumps({"text": found[name], "accept": labels[name], "source": f"fabric:{name}",
                          "style": "system-prompt"}, ensure_ascii=False))
    print(f"dropped as near a known line or an earlier pattern: {dropped}", file=sys.stderr)


if __name__ == "__main__":
    main()
