// Words of the agencies' deadlines panel (chair and moderator), Vietnamese first.

export const strings = {
  vi: {
    "dlp.agency": "Cơ quan", "dlp.drafts": "Dự thảo", "dlp.written": "Văn bản đã gửi", "dlp.outstanding": "Còn phải trả lời",
    "dlp.overdue": "Quá hạn", "dlp.none": "Chưa có câu hỏi nào được giao cho cơ quan trả lời.",
    "dlp.late": "Cơ quan chậm tiến độ:", "dlp.late_draft": "chưa có dự thảo trả lời {n} câu",
    "dlp.late_written": "quá hạn trả lời bằng văn bản {n} câu", "dlp.passed": "đã qua", "dlp.missing": "còn thiếu {n}",
    "dlp.unavailable": "Không tải được tiến độ của các cơ quan.",
    "dlp.d.collection": "Các địa phương gửi ý kiến", "dlp.d.compilation": "Tổng hợp, chuyển cơ quan trả lời",
    "dlp.d.draft_answers": "Chuẩn bị nội dung trả lời", "dlp.d.programme": "Kịch bản, chương trình",
    "dlp.d.written_answers": "Trả lời bằng văn bản",
  },
  en: {
    "dlp.agency": "Agency", "dlp.drafts": "Drafts", "dlp.written": "Written answers sent", "dlp.outstanding": "Still to answer",
    "dlp.overdue": "Overdue", "dlp.none": "No question has been assigned to an agency yet.",
    "dlp.late": "Agencies behind:", "dlp.late_draft": "{n} without a draft answer",
    "dlp.late_written": "{n} written answers overdue", "dlp.passed": "passed", "dlp.missing": "{n} missing",
    "dlp.unavailable": "Could not load the agencies' progress.",
    "dlp.d.collection": "Districts send questions", "dlp.d.compilation": "Compiled and sent to agencies",
    "dlp.d.draft_answers": "Draft answers ready", "dlp.d.programme": "Programme ready",
    "dlp.d.written_answers": "Written answers",
  },
};
