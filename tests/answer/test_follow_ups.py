"""Follow-up questions (issue 26, point 3): read right in several languages, and retrieved with their own
words weighing more than the previous question's."""

from __future__ import annotations

import pytest

from rag.answer.follow_ups import is_follow_up, refers_back, retrieval_query, subject_words
from rag.answer.prompt import Turn
from rag.bench.follow_ups import decisions, read_pairs, run_follow_up_bench, standalone
from tests.conftest import REPO

OLLAMA = "Which port does Ollama use?"


def test_the_shipped_pair_set_is_read_right() -> None:
    every = read_pairs()
    assert len(every) >= 60 and len({p.lang for p in every}) >= 5
    # blind-3, blind-10 and blind-12 were never looked at to change a rule: how questions nobody tuned on
    # fare (blind-3 83% on first read, 87% now; blind-10, read once after the fourth session's fixes: 85%,
    # 86% after a review; blind-12, read once after the fifth session's: 81%, 80% once a review's finds
    # had narrowed two of them).
    # blind-16 (seventh session), read once after that session's fixes: 84% (the session-start rules: 83%).
    never = ("blind-3", "blind-10", "blind-12", "blind-16")
    unseen = decisions([p for p in every if p.split in never])
    assert unseen.right.total == 360 and unseen.right.rate >= 0.8, unseen.wrong
    assert unseen.by_split["blind-3"].rate >= 0.85 and unseen.by_split["blind-10"].rate >= 0.82, unseen.wrong
    assert unseen.by_split["blind-12"].rate >= 0.78 and unseen.by_split["blind-16"].rate >= 0.82, unseen.wrong
    pairs = [p for p in every if p.split not in never]
    report = decisions(pairs)
    assert report.right.total >= 1240 and report.right.rate >= 0.93, report.wrong
    assert all(share.rate >= 0.9 for share in report.by_label.values()), report.by_label
    assert report.by_split["held-out"].rate >= 0.95, report.wrong  # the rules were written on "dev" only
    # Written blind to the rules by other authors, each read once before the rules were fixed on it (first
    # reads: 84%, 84%, 77%, 70%, 75%, 83%, 75%, 81%, and blind-11 77%; BENCHMARKS.md).
    assert all(report.by_split[f"blind-{n}"].rate >= 0.9 for n in (1, 2, 4, 5, 6, 7, 9)), report.wrong
    assert report.by_split["blind-8"].rate >= 0.85 and report.by_split["blind-11"].rate >= 0.83, report.wrong
    # blind-13, written for the sixth session: 88% on first read (follow-ups 78%, new 98%), 90% after two
    # categories were fixed on it
    assert report.by_split["blind-13"].rate >= 0.9, report.wrong
    # blind-14, written for the seventh session: 84% on first read (follow-ups 70%, new 98%), 96% after
    # seven categories were fixed on it (German pronouns typed lowercase, "aussi" named nothing, "anything
    # cheaper", "muda alguma coisa?", Hindi "… to?" and "chalega?", a measure with nothing else, 也…吗)
    assert report.by_split["blind-14"].rate >= 0.95, report.wrong
    # blind-15, the same session's second: 76% on first read (follow-ups 62%, new 90%), 91% after its
    # categories were fixed (function words without accents or apostrophes, "got it", Italian "il", ...)
    assert report.by_split["blind-15"].rate >= 0.9, report.wrong


@pytest.mark.parametrize(
    ("previous", "question", "follow_up"),
    [
        # A correction of the previous question.
        ("How do I reset the printer?", "no, I meant the scanner", True),
        ("Wie entkalke ich die Kaffeemaschine?", "ich meinte den Wasserkocher", True),
        # A request about the previous answer, in any language; a question with a question word is not one.
        ("What does the warranty cover?", "shorter please", True),
        ("¿Qué cubre la garantía?", "explícamelo más fácil", True),
        ("Que couvre la garantie ?", "tu peux le résumer en trois points ?", True),
        ("保修范围是什么？", "说得简单一点", True),
        ("What does the warranty cover?", "How do I print a table of contents?", False),
        ("What does the warranty cover?", "ok, now explain what a deductible is", False),
        # A fragment: a preposition or a definite article, two words of its own, the rest is the previous.
        ("How much is a day pass at the pool?", "for students?", True),
        ("¿Cuánto cuesta el abono mensual?", "para jubilados?", True),
        ("Which port does the admin console use?", "the default password?", True),
        ("Can I bring a dog to the office?", "on fridays too?", True),
        # A connective before a whole question of its own is a new question; before a fragment, not.
        ("When is the recycling collected?", "and how do I order a new compost bin for the garden?", False),
        ("Wie viele Urlaubstage habe ich?", "und nach fünf Jahren?", True),
        # ... but "what about" only ever continues, however long what follows.
        ("Which port does Ollama use?", "and what about the ports LM Studio uses on Windows laptops?", True),
        # A pronoun whose noun comes before it in the same question; a connective and a pronoun.
        ("How do I book a meeting room?", "If the projector in room 4 breaks, who should I report it to?", False),
        ("How do I enable backups?", "and what if I want to turn them off again later?", True),
        # A message that says it changes the subject.
        ("Where do I park at the clinic?", "one more thing: do you accept travel insurance?", False),
        ("Wo parke ich bei der Klinik?", "übrigens, habt ihr samstags geöffnet?", False),
        # Words these rules look for, in new questions of their own (a review's finds).
        ("How do I reset the router?", "¿Por qué se cae el wifi?", False),
        ("How do I reset the router?", "Bis wann muss ich die Steuererklärung abgeben?", False),
        ("How do I reset the router?", "Am I eligible for overtime?", False),
        ("How do I reset the router?", "Explain photosynthesis", False),
        ("How do I reset the router?", "Do points expire?", False),
        ("How do I reset the router?", "Is Spanish easy?", False),
        ("How do I reset the router?", "列表怎么排序?", False),
        ("How do I reset the router?", "Je pensais acheter une voiture électrique, quelles aides existent ?", False),
        # Picking one of the options the previous question named; not when it names them itself.
        ("Compare the Silver and Gold memberships", "which one is better for swimming?", True),
        ("Was ist der Unterschied zwischen Tarif A und Tarif B?", "welcher lohnt sich für Familien?", True),
        ("¿Qué diferencia hay entre el abono mensual y el anual?", "entre los dos, ¿cuál me sale más barato?", True),
        ("Quais são os dois planos de internet?", "qual deles tem fidelidade?", True),
        ("健身房的月卡和年卡有什么区别？", "选哪个更划算", True),
        ("What is the difference between the Silver and Gold memberships?", "the second one, does it include classes?", True),
        ("What is the difference between the Silver and Gold memberships?", "Which browser does the booking site support?", False),
        ("How do I book a court?", "Which is cheaper, the Silver or the Gold membership?", False),
        # The previous answer: doubted, not understood, to be said again otherwise, or its source asked for.
        ("How late is the gym open on Sundays?", "are you sure? the app says 6pm", True),
        ("How late is the gym open on Sundays?", "hmm i don't think that's right", True),
        ("Wie lange hat das Bad sonntags offen?", "Stimmt das? Auf dem Schild steht 18 Uhr.", True),
        ("How do I descale the machine?", "explain it like i'm 5", True),
        ("How do I descale the machine?", "I don't understand how to descale the milk frother", False),
        ("Comment détartrer la machine ?", "j'ai rien compris, tu peux reformuler plus simplement ?", True),
        ("Can I sublet my room?", "where does it say that in the contract?", True),
        ("Can I sublet my room?", "you said yes but my landlord disagrees, clause 12 forbids it", True),
        ("How do I pair the headphones?", "done, but the light is still blinking red", True),
        ("How do I pair the headphones?", "translate that into German for my dad", True),
        ("How do I pair the headphones?", "Translate the safety instructions into German", False),
        ("Welche Dokumente brauche ich für den Umzug?", "kannst du das als tabelle zeigen", True),
        # A changed value, detail or condition.
        ("What is the late fee for year 7 pupils?", "year 9", True),
        ("Wie lange backe ich das Brot bei 200 Grad?", "bei 180?", True),
        ("Can I bring a stroller on board?", "even if it folds down really small?", True),
        ("Is the pool open on public holidays?", "weekends different?", True),
        ("What's the service interval for the petrol model?", "same question for the hybrid", True),
        ("How long do I proof the dough at room temperature?", "in the fridge instead?", True),
        ("Where is the nearest recycling centre?", "ok and to the one in the north?", True),
        ("Where is the nearest recycling centre?", "thanks! also, is there a bulky waste pickup?", False),
        ("Et le parking, il est gratuit ?", "Y las clases de yoga, ¿hay que reservarlas antes?", False),
        ("When is the exam registration deadline?", "so what happens if a student misses the exam through illness?", False),
        # Drawing on the answer: applying it to one's own case ("then", "even so"), doubting it, what it
        # means, trying it; a demonstrative as the subject of a long question (blind-11's categories).
        ("What age do the junior tennis groups start at?", "my son is 7 and a half, which group is he in then", True),
        ("Quel est le prix du forfait mensuel ?", "et pour un étudiant qui vient deux fois par semaine alors ?", True),
        ("Ab wann darf man den Pool benutzen?", "meine Tochter ist 5, heißt das sie darf noch nicht rein?", True),
        ("How much is the cleaning fee?", "that doesn't sound right, the listing said 20", True),
        ("How do I reset the smoke alarm?", "ok I did it and now it beeps every minute", True),
        ("How long is the warranty on the dryer?", "does that also cover the heating element I replaced myself last winter", True),
        ("Quanto tempo dura la garanzia?", "ma vale lo stesso se l'ho comprata all'estero?", True),
        ("Was kostet ein Minijob-Vertrag?", "Gilt das auch für Minijobber mit weniger als 520 Euro im Monat?", True),
        # ... and what a review of those found must stay follow-ups: "what about <subject>, <question>" and
        # a German "Und" before a question with its nouns capitalised
        ("How much does the gym membership cost per month?", "what about students, does a discount apply?", True),
        ("When does the gym open?", "what about weekends, are the opening times different?", True),
        ("Wann öffnet das Hallenbad am Sonntag?", "Und wie teuer ist der Eintritt?", True),
        ("How much is the repair outside warranty?", "really that expensive?", True),
        # Trying the answer failed, said first and with no subject of its own; "what about X" in Chinese
        # with a value after it (blind-13's categories)
        ("How do I reset the thermostat to factory settings?", "didnt work, screen still shows E4", True),
        ("¿Cómo reinicio el router?", "no funciona, la luz sigue roja", True),
        ("Wie setze ich den Drucker zurück?", "klappt nicht", True),
        ("布洛芬成人一次吃多少", "孩子呢？6岁", True),
        ("年假有几天", "周末呢", True),
        ("How do I reset the router?", "didn't work, what now?", True),
        # blind-14's categories (seventh session), each in other words: German "es" and a lowercase "das"
        # beside a word only German has, not an "es" that announces a clause or the time
        ("Wie installiere ich den Treiber?", "geht das auch unter linux", True),
        ("gibt es eine sauna im hotel", "wann ist es geöffnet", True),
        ("Muss ich Überstunden melden?", "ist es erlaubt, am Wochenende von zu Hause zu arbeiten", False),
        ("Muss ich Überstunden melden?", "kann es sein, dass das WLAN im Keller nicht geht?", False),
        ("How do I reset my password?", "wie spät ist es in Tokio?", False),
        ("How do I reset my password?", "es gratis el parking?", False),
        # "too" names nothing; a comparative with nothing to compare with; whether one's case changes it
        ("quels déchets vont dans le bac jaune ?", "les cartons aussi ?", True),
        ("how much is the premium plan", "hmm, anything more affordable?", True),
        ("quanto costa la camera doppia", "c'è qualcosa di meno caro?", True),
        ("how much is the gold plan", "is there anything cheaper than the gold plan for families", False),
        ("How do I reset my password?", "the old version was better, can I downgrade?", False),
        ("¿cuántos días de vacaciones tengo?", "trabajo a media jornada, ¿cambia algo?", True),
        ("Welche Unterlagen brauche ich?", "ich bin Student, ändert sich was?", True),
        # Hindi's "then" and "will it do" at the end; German "then" after its verb, unless a condition of its own
        ("data pack kitne din chalta hai", "beech me recharge kar diya to?", True),
        ("naya sim kaise milega", "mera aadhaar purana hai, chalega?", True),
        ("Wie hoch ist die Kursgebühr?", "ich bin Rentner, bekomme ich dann Rabatt?", True),
        ("Wie kündige ich?", "wenn ich umziehe, was passiert dann mit dem Vertrag?", False),
        # a measure and nothing else: of what was asked
        ("does the hotel have an airport shuttle", "how much per person", True),
        ("posso estender a reserva da sala", "por quantas horas no máximo?", True),
        ("¿el museo tiene visitas guiadas?", "¿cuánto dura?", True),
        ("How do I reset my password?", "How many days of annual leave do I get?", False),
        # Chinese "also" before a bare verb at the end, unless after a question of its own
        ("怎么申请退税", "我是外国人，也能办吗", True),
        ("健身房几点开门", "游泳池可以带孩子吗？周末也可以吗", False),
        # blind-15's categories (seventh session), in other words: function words typed without accents or
        # apostrophes; "got it" opens, it does not point back; a connective before a question word and two
        # subject words is a question of its own
        ("¿cuánto cuesta el forfait de temporada?", "y cuanto cuesta por semana", True),
        ("how do i sync my photos", "funciona tambem no android?", True),
        ("do you sell gift cards", "whats the maximum amount for those", True),
        ("how do i cancel my order", "ugh thats way too many steps, isnt there a quicker way", True),
        ("Are guests allowed to use the sauna?", "and whats the checkout time", False),
        ("do you have evening classes", "got it. can I pay the course fee in instalments", False),
        ("Wie hoch ist die Kaution?", "und wann bekomme ich die zurück", True),
        # Italian "il" is an article beside Italian words; a pronoun after four subject words of its own
        ("quanti posti ha la sala", "quindi, si può usare il giardino per il buffet?", False),
        ("comment bloquer ma carte", "et le délai de livraison de la nouvelle carte c'est combien ?", False),
        # tried and failed, in Chinese; "and if", "even when"; corrections; doubts; "would that be enough"
        ("怎么重置路由器", "试了还是不行", True),
        ("打印机怎么加墨", "那我要是用别的牌子的墨水呢", True),
        ("what tyre pressure should i use", "even when towing a trailer?", True),
        ("पानी का बिल कैसे भरें", "थोड़ा छोटा करके बताओ", True),
        ("wie oft muss der Filter gewechselt werden", "hä, ich dachte es reicht einmal im Jahr?", True),
        ("How do I reset my password?", "I thought it would be easy to set up the VPN on Linux, how do I do it?", False),
        ("¿pueden venir perros al hotel?", "perdón, quería decir gatos", True),
        ("how many people fit in the small room",
         "we are 12 plus a projector and a coffee table, would that be enough?", True),
        ("How do I reset my password?", "I have a 2019 MacBook, does this work with the new dock?", False),
        # what a code review of those rules found they must still read as follow-ups
        ("Can I get a refund?", "and how long does the refund take?", True),
        ("Do you have parking?", "and how much is the parking per day?", True),
        ("How much is a day pass?", "and what's the weekend price?", True),
        ("Wie beantrage ich Elterngeld?", "muss ich es zurückzahlen, wenn ich wieder arbeite?", True),
        ("How do I pair the headphones?", "gotcha. and the battery life?", True),
        ("How do I pair the headphones?", "got it to pair but the sound is choppy", True),
        ("Can I rent a bike?", "how much per hour and per day", True),
        ("PAN card kaise banwaye?", "kitna time lagta hai?", True),
        ("How do I cancel my order?", "ugh too many steps, isnt there a quicker way", True),
    ],
)
def test_follow_up_reading_in_context(previous: str, question: str, follow_up: bool) -> None:
    assert is_follow_up(question, previous) is follow_up


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [
        # The two: a short new question, and a follow-up.
        ("What is BM25?", False),
        ("and how fast is it?", True),
        # Impersonal phrases are not references back.
        ("Is there an offline mode?", False),
        ("Is it possible to delete a conversation?", False),
        ("How long does it take to index a large PDF?", False),
        ("Gibt es eine Kommandozeile?", False),
        ("Y a-t-il une limite de taille ?", False),
        ("Is it fast?", True),
        # German "das": a pronoun before a verb or the end, an article before a noun.
        ("Ist das schnell?", True),
        ("Wie installiere ich das Modell phi-4-mini lokal?", False),
        # French inversion and "c'est".
        ("Marche-t-elle hors ligne ?", True),
        ("C'est gratuit ?", True),
        # "the same" anywhere; a question that only asks for more.
        ("Does the same hold for vLLM?", True),
        ("Could you give me an example?", True),
        # Continuing the previous subject with no pronoun; a new subject in two words.
        ("How do I change the port?", True),
        ("How does retrieval work?", False),
        # Elided, clitic and attached pronouns; German "die" before a lowercase word; a long question's own "it".
        ("Quand est-ce qu'elle écoute ?", True),
        ("Puis-je le changer ?", True),
        ("¿Puedo cambiarlo?", True),
        ("Muss ich die vorher starten?", True),
        ("wie funktioniert die eskalation im chat?", False),  # all lowercase: "die" is an article
        ("I uploaded a spreadsheet with prices in it; how are spreadsheet tables split into passages?", False),
        # "it" announcing a clause; a quoted term is what "this" points at; Italian "il" is an article;
        # a new name in the same frame is a new question.
        ("What does it mean when the status line says waiting?", False),
        ("What is this 'top_k' setting for?", False),
        ("Come si configura il server?", False),
        ("Which port does LM Studio use?", False),
        # A named subject, then a second clause whose pronoun stands for it; connectives only as words of
        # their own; words that only end like an infinitive with a pronoun; acronyms.
        ("What is LM Studio and how do I install it?", False),
        ("How does BM25 rank passages, and why is it fast?", False),
        ("Does vLLM support it?", True),
        ("E-mail notifications: how do I turn off alerts?", False),
        ("E2E tests in the CI pipeline?", False),
        ("Qu'est-ce que l'architecture moderne ?", False),
        ("How do I contact IT support?", False),
        # Other scripts.
        ("Chainlit रिक्त दिसत असेल तर काय करावे?", False),
        ("ಮಾದರಿ ಲೋಡ್ ಆದ ತಕ್ಷಣ ವಿಳಂಬ ಹೆಚ್ಚಿದ್ದರೆ ಏನು ಮಾಡಬೇಕು?", False),
        ("如何在本地运行模型？", False),
        ("速度呢？", True),
    ],
)
def test_follow_up_reading(question: str, follow_up: bool) -> None:
    assert is_follow_up(question, OLLAMA) is follow_up
    assert retrieval_query(question, [Turn(OLLAMA, "11434 [1].")]) == (question, OLLAMA if follow_up else "")
    assert retrieval_query(question, []) == (question, "")  # nothing to follow


def test_a_chain_of_follow_ups_carries_the_question_it_started_from() -> None:
    history = [Turn("How do I upload a PDF?", "..."), Turn(OLLAMA, "11434."), Turn("What about LM Studio?", "1234.")]
    assert retrieval_query("And vLLM?", history) == ("And vLLM?", f"{OLLAMA}\nWhat about LM Studio?")
    longer = [*history, Turn("and llama.cpp?", "8080."), Turn("And Foundry Local?", "dynamic.")]
    # Three questions at most: the one with the subject ("port"), and the latest two.
    assert retrieval_query("and TGI?", longer)[1] == f"{OLLAMA}\nand llama.cpp?\nAnd Foundry Local?"


def test_subject_words_leave_out_question_words_pronouns_and_requests_for_more() -> None:
    assert subject_words("What is BM25?") == ["bm25"]
    assert subject_words("Can you give an example of it, please?") == []
    assert subject_words("Wie viel kostet es?") == ["kostet"]
    assert subject_words("什么是 BM25？") == ["bm25"]
    assert not refers_back("Is there a way to export?") and refers_back("Is there a way to export it?")


def test_a_follow_up_retrieves_with_its_own_words_weighing_more() -> None:
    """Over the bundled corpus: more of a follow-up's top passages hold its own words than when both
    questions were joined alike, and a new question misread as a follow-up keeps more of its own passages."""
    report = run_follow_up_bench(read_pairs(), REPO / "docs_corpus")
    assert report.retrieval_pairs["follow-up"] >= 40 and report.retrieval_pairs["new"] >= 20
    assert report.own_words_weighted > report.own_words_joined + 0.1
    assert report.new_kept_weighted > report.new_kept_joined + 0.2


def test_unrelated_questions_one_after_another_read_as_new() -> None:
    questions = ["Who won the 2023 FIFA Club World Cup?", "Which company released the Vision Pro headset?",
                 "How many moons does Saturn have?", "What causes inflation to rise in 2023?"]
    share, misread = standalone(questions)
    assert (share.right, share.total, misread) == (3, 3, [])


@pytest.mark.parametrize(
    "question",
    [  # a review's finds: ordinary first questions with the words the follow-up rules look for
        "How do I transfer files between two computers?",
        "Quel est le délai dans lequel je dois déclarer un sinistre ?",
        "¿Cuál de los planes incluye soporte telefónico?",
        "Where can I find the first response time SLA?",
        "Comment traduire le menu en français ?",
        "Übersetzt das Programm auch PDFs?",
        "Si vous êtes sur un réseau public, faut-il utiliser le VPN ?",
        "¿Está seguro el pago con PayPal?",
        "Wo steht das WLAN-Passwort?",
        "Können Sie das Formular online ausfüllen?",
        "Wie exportiere ich das Adressbuch als Liste?",
        "Non ho capito come si attiva il roaming",
        "有没有更简单的安装方法？",
        "Explain the GDPR in simple terms",
        "Done button is greyed out, why?",
        "Easier way to export contacts?",
        "Are annual leave and paid time off the same thing?",
        "iPhone和安卓的设置一样吗？",
        "Even if I work remotely, am I entitled to a meal allowance?",
        "For remote employees, is there a stipend?",
        "AI assistant pricing?",
        "I updated the Outlook app on my iPhone and now it doesn't work, what should I do?",
        "Redis port?",
        "One more thing: are the EU and UK chargers the same?",
        "Which of these settings affects battery life?",
        # ... and with the words of the fifth session's rules (then, even so, "heißt das", a demonstrative)
        "When was the travel policy updated, and what changed since then?",
        "Even so, do I need a visa for Japan?",
        "was bedeutet das symbol auf der waschmaschine",
        "agar bill late ho gaya, to kya fine lagega?",
        "Do these rules apply to contractors?",
        "Pourquoi les trains sont plus chers en été alors que les avions non ?",
        "Does this laptop support Wi-Fi 6?",
        # (a review's finds on those: a condition, a premise or a noun of its own in the same question)
        "Wenn ich die Frist für die Steuererklärung verpasse, was passiert dann?",
        "Si no renuevo el DNI antes de que caduque, ¿qué pasa entonces?",
        "I paid the invoice two days late; even so, does the early-payment discount still apply?",
        "Login pe teen baar galat password daal diya, to kya account lock ho jayega?",
        "Auf meinem Steuerbescheid steht „vorläufig“ – bedeutet das, dass er noch geändert werden kann?",
        "Does that rule about carry-on liquids apply to baby formula?",
        "My tax refund is half of last year's, and that doesn't seem right; what could cause such a drop?",
        "公司的年假规定也适用于劳务派遣员工吗？",
        "My passport expires in March, do I need to renew it before then?",
        "Suppose I miss the tax deadline, what happens then?",
        "¿estará listo el nuevo para entonces?",
        "What's the difference between than and then?",
        "Was bedeutet das Nicht-Bestehen der Probezeit für meinen Urlaubsanspruch?",
        "Was bedeutet das Es in der Psychoanalyse?",
        "This doesn't look right to me: the dashboard shows negative stock for item 4711. What causes that?",
        "I tried this: pip install rag-tools, but it fails with error 13. What's wrong?",
        # ... and with the words of the sixth session's (trying it failed; 呢)
        "Not working after the update: my HP printer shows offline on Windows 11, how do I fix it?",
        "doesn't work on android, the banking app fingerprint login keeps failing after I changed phones",
        "新员工的试用期是多久呢？",
        # (a review's: first questions that open with a failure and then say what failed; Chinese questions
        # that end with 呢, nine of ten read as follow-ups before this session)
        "didn't work for me last time, so how do I request a refund for a cancelled flight?",
        "doesnt work anymore - my garage door remote stopped opening the door after I changed the battery, how do i reprogram it?",
        "No funciona la tarjeta de empleado para entrar al edificio desde ayer, ¿a quién tengo que pedir una nueva?",
        "geht nicht, die Spülmaschine zeigt Fehler E15 an und pumpt nicht ab – was bedeutet dieser Fehlercode?",
        "kaam nahi kar raha mera office wala email phone pe, Outlook app me company account kaise add karte hain?",
        "不行了，公司的VPN在家连不上，一直提示证书错误，该怎么解决？",
        "发票丢了怎么办呢",
        "出差住宿的报销标准是多少呢？",
        "离职的时候要办理哪些手续呢？",
        # (a code review's: a failure said first, then a question of its own; more Chinese question words)
        "Not working on Fridays, do I need to tell HR?",
        "No funciona mi tarjeta de acceso, ¿a quién llamo?",
        "Klappt nicht mit der Anmeldung im Portal, was tun?",
        "不行，打印机卡纸了怎么办？",
        "公司离地铁站多远呢？我想坐地铁上班",
        "要不要带护照呢？我下周出差",
        "能否退款呢？",
        # (a code review of the seventh session's rules: an "es" that announces a clause or the weather, a
        # difference asked about a subject of its own, a case that names its own subject, a conversion)
        "Wie lange dauert es, einen neuen Reisepass zu beantragen?",
        "wird es morgen in hamburg regnen",
        "wie geht es weiter nach der ausbildung",
        "Does exercise make a difference to blood pressure?",
        "¿cambia algo en la declaración de la renta este año?",
        "iPhone 15和iPhone 16有什么区别吗",
        "My baby sleeps 16 hours a day, is this ok?",
        "Can I do something more productive with my old laptop?",
        "is there anything better for back pain?",
        "¿hay algo más barato que el metro para ir al aeropuerto?",
        "Ich ziehe nach München, muss ich dann mein Auto ummelden?",
        "How many hours are in a week?",
        "没用过支付宝，可以用微信付款吗",
        "kya mera purana charger naye laptop pe chalega?",
    ],
)
def test_ordinary_questions_with_the_words_of_a_follow_up_are_new(question: str) -> None:
    assert is_follow_up(question, "How do I reset my password?") is False


def test_a_question_that_picks_only_after_options_and_not_before_a_noun_of_its_own() -> None:
    assert is_follow_up("which is cheaper?", "Should I take the bus or the train?") is True
    assert is_follow_up("Which is the default port for the API server?", "Should I use Wi-Fi or Ethernet?") is False
    assert is_follow_up("¿Cuál es el horario de atención?", "¿Ya puedo descargar la factura?") is False


def test_the_hostile_reading_benchmark_times_each_unit_at_two_lengths() -> None:
    """`rag bench follow-ups --hostile` (its numbers are in BENCHMARKS.md, not checked here: no timed tests)."""
    from rag.bench.follow_ups import HOSTILE_UNITS, hostile

    timings = hostile(small=20, large=80, units=("tried it ", "呢"))
    assert [t.unit for t in timings] == ["tried it ", "呢"] and "tried it " in HOSTILE_UNITS
    assert all(0 <= t.small_s and 0 <= t.large_s and t.growth >= 0 for t in timings)


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [
        # A name, a connective, then a pronoun that stands for the name: the question's own (issue 26); read
        # in three searches since "tried it " x 4,000 took 32 s as one pattern
        ("I use Ollama, how do I update it?", False),
        ("Is K8s free and is it fast?", False),
        ("Is Redis free, and is it fast?", False),
        ("Is Redis free,\nand is it fast?", True),  # on another line: as the single pattern read it
        ("and how do I update it?", True),
    ],
)
def test_a_second_clause_pronoun_stands_for_a_name_of_the_same_question(question: str, follow_up: bool) -> None:
    assert is_follow_up(question, "Which port does vLLM use?") is follow_up
