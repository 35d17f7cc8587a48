#!/usr/bin/env python3
"""Builds crmsim/default.json from /work/shared/fixtures/seed-journal.jsonl.

The three full bills of the journal (350255, 49040, 206929) are copied as they
are. Every list summary without a full bill gets a synthesized bill with the
same id, date, summ, number and customer name (plus the trailing space the
real upstream leaves in customer.name) and plausible products whose
price*quantity add up to summ exactly. Run from the repository root:

    python3 crmsim/testdata/mkdefault.py > crmsim/default.json
"""
import json, sys

src = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/fixtures/seed-journal.jsonl"
entries = [json.loads(l) for l in open(src, encoding="utf-8")]

system = ""
bills = {}
summaries = {}
account_of = {}
for e in entries:
    if e["direction"] != "response":
        continue
    if e["kind"] == "HELLO":
        system = e["body"]["system"]
    elif e["kind"] == "BILL":
        bills[e["body"]["id"]] = e["body"]
        account_of[e["body"]["id"]] = e["account"]
    elif e["kind"] == "LIST":
        for s in e["body"]:
            summaries.setdefault(s["id"], s)
            account_of.setdefault(s["id"], e["account"])


def kop(v):
    return int(round(v * 100))


def num(k):
    if k % 100 == 0:
        return k // 100
    return float("%d.%02d" % (k // 100, k % 100))


tea = [
    (4183, "Шу пуэр «Вековые традиции», ЧАЁК, 200 грамм, 2025 год", 1305, "Грамм"),
    (940, "Шу пуэр «Культура», ЧАЁК, 200 грамм, 2021 год", 1827, "Грамм"),
    (2867, "Син Бан Чжан Шу, 2020 год, 200 грамм", 7830, "Грамм"),
    (3311, "Те Гуань Инь «Весенний», 100 грамм", 2150, "Грамм"),
    (1207, "Да Хун Пао классический, 50 грамм", 3470, "Грамм"),
]
tea_rest = [
    (5120, "Чайник глиняный исинский, 200 мл", "Штука"),
    (5188, "Гайвань фарфоровая белая, 150 мл", "Штука"),
    (5231, "Набор пиал «Лотос», 6 шт", "Штука"),
]
furniture = [
    (15446, "Кресло компьютерное Кларк велюр серый"),
    (354140, "Лампа настольная Moderli V11277-1T Mykke"),
    (327843, "Светильник подвесной Moderli V11080-1P Lilly"),
    (66540, "Светодиодный подвесной светильник Moderli V5010-PL Richard"),
    (41877, "Стол письменный Арго 120 см дуб сонома"),
]


def product(pid, name, price_k, qty, unit, tax):
    return {"id": pid, "type": "NORMAL", "price": num(price_k), "taxrate": tax,
            "itemType": 1, "prodname": name, "quantity": qty, "unitname": unit}


def synth(s, i):
    total = kop(s["summ"])
    acct = account_of[s["id"]]
    prods = []
    if acct == 171:
        pid, name, price, unit = tea[i % len(tea)]
        qty = 50
        while qty > 0 and price * qty >= total:
            qty -= 10
        if qty > 0:
            prods.append(product(pid, name, price, qty, unit, "5%"))
            total -= price * qty
        pid, name, unit = tea_rest[i % len(tea_rest)]
        prods.append(product(pid, name, total, 1, unit, "5%"))
    else:
        pid, name = furniture[i % len(furniture)]
        first = total * 2 // 3 // 100 * 100
        if first > 0:
            prods.append(product(pid, name, first, 1, "Штука", "5%"))
            total -= first
        pid, name = furniture[(i + 1) % len(furniture)]
        prods.append(product(pid, name, total, 1, "Штука", "5%"))
    name = s["customername"] + " "
    return {"id": s["id"], "date": s["date"], "summ": s["summ"], "number": s["number"],
            "customer": {"id": 500000 + i, "inn": "", "kpp": "", "reg": "", "name": name,
                         "okpo": "", "fullname": name, "legalentity": False},
            "products": prods, "prepayment": 0, "prepaymentEnable": True}


out = []
for b in bills.values():
    out.append(b)
for i, (sid, s) in enumerate(sorted(summaries.items())):
    if sid not in bills:
        out.append(synth(s, i))
out.sort(key=lambda b: b["date"], reverse=True)

lines = ['{"system": %s,' % json.dumps(system, ensure_ascii=False), ' "bills": [']
for j, b in enumerate(out):
    lines.append("  " + json.dumps(b, ensure_ascii=False) + ("," if j < len(out) - 1 else ""))
lines.append(" ]}")
print("\n".join(lines))
