"""Is a question a follow-up to the previous one? And what to retrieve with when it is.

A follow-up ("and how fast is it?", "what about LM Studio?", "speed?") names its subject only through the
conversation, so BM25 on its words alone finds nothing useful; a new question ("What is BM25?") searched
together with the previous one answers the previous one. The reading is linguistic, in the languages the
app analyses, and needs no corpus:

1. A correction ("I meant the extender"), a request about the previous answer ("shorter please",
   "explícamelo más fácil", "说简单点", "translate that into German"), a doubt about it ("are you sure?",
   "stimmt das?"), asking where it comes from ("wo steht das?"), a report that its steps did not help
   ("done, still blinking"), picking one of the options the previous question named ("which one would you
   pick", "welcher lohnt sich", "选哪个"), the same question with another value or condition ("same
   question for the petrol version", "year 11", "even if it folds?", "weekends different?"), a comparative
   with nothing to compare with ("anything cheaper", "algo más básico"), whether one's own case changes the
   answer ("sou estrangeiro, muda alguma coisa?", "mera license purana hai, chalega?") is a follow-up.
2. A question that refers back is a follow-up: it starts with a connective ("and", "what about", "et",
   "und", "y", "还有", "और") or holds a pronoun or demonstrative ("it", "that", "ça", "die", "eso",
   "exportarlo", "它", "यह"), after the phrases that only look like one are removed ("is there", "is it
   possible", "gibt es", "y a-t-il", "one more thing"); unless the question says itself what the pronoun
   stands for (three subject words before it, or five in all), or the connective opens a whole question
   of its own ("and where do I throw away old batteries?").
3. A question that names its own subject is new: "What is X?" / "Qu'est-ce que X ?" / "什么是 X" with a
   subject word, or two subject words that share nothing with the previous question, or three or more;
   unless it is a fragment of two or three ("for a 6 year old?", "the default value?", "weekend too?").
4. What is left is short and subject-less ("why?", "can you give an example?"), asks only a measure of
   what was asked ("¿cuánto dura?", "how much per person") or continues the previous question's subject
   ("how do I change the port?" after a question on ports): a follow-up.

Measured on rag/data/follow_ups.jsonl (1,604 pairs in eight languages, 1,510 of them written blind to these
rules by sixteen authors): 93.6% right on the pairs the rules were fixed on; 75-89% on sets read before any
rule was fixed on them (84%, 76% and 84% on the last three, blind-14 to blind-16); unrelated benchmark
queries read as new 97-100%
(BENCHMARKS.md, "Follow-up questions").
A follow-up is retrieved with its own words at full weight and the previous question's at
`rag.index.search.EARLIER_WEIGHT`, so "and how fast is it?" finds passages on speed, not the previous answer's again,
and a new question misread as a follow-up still finds its own subject first.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache

import regex
from bm25s import stopwords as bm25s_stopwords

from rag.answer.prompt import Turn
from rag.index.analysis import QUESTION_WORDS
from rag.index.languages import STEMMERS, detect_surely, profile

# Phrases that look like a reference back and are not: "is there a dark mode?", "is it possible to...",
# "how long does it take", "gibt es", "y a-t-il", "il faut", "es posible". Removed before looking for one.
_IMPERSONAL = regex.compile(
    r"\b(?:is|are|was|were|will|isnt|isn['’]t|arent|aren['’]t)\s+there\b|\bthere\s+(?:is|are|was|were)\b|\btheres\b"
    # an acknowledgement that opens the message: "got it. is there a placement test..."
    r"|^\W*(?:ok(?:ay)?\W+)?(?:got\s+it|gotcha)(?=\s*(?:[.,!;:]|$))[\s.,!;:]*"
    r"|\b(?:is|was|would)\s+it\s+(?:possible|ok|okay|safe|better|worth|true|normal|necessary|hard|easy|a good idea)\b"
    r"|\bit\s+(?:is|'s)\s+(?:possible|necessary)\b|\bdoes\s+it\s+take\b|\bit\s+takes\b"
    r"|\bc['’]est\s+quoi\b(?=\s+\S)|\by\s*a[\s-]+t[\s-]+il\b|\bil\s+y\s+a\b|\bil\s+faut\b|\best[\s-]+il\s+possible\b|\bfaut[\s-]+il\b"
    r"|\bgibt\s+es\b|\bes\s+gibt\b"
    r"|\b(?:ist|wäre|es)\s+(?:es\s+|ist\s+)?(?:möglich|erlaubt|ok|okay|sinnvoll|nötig|notwendig|normal|üblich|besser|sicher|gefährlich)\b"
    r"|\bwie\s+geht\s+es\b|\b(?:wird|ist)\s+es\s+(?:\p{L}+\s+){0,4}?(?:kalt|kälter|warm|wärmer|heiß|heißer|dunkel|hell)\b"
    r"|\bwie\s+spät\s+ist\s+es\b|\bkann\s+es\s+sein\b|\b(?:regnet|schneit)\s+es\b|\bes\s+(?:regnet|schneit)\b|\bgeht\s+es\s+um\b"
    r"|\bes\s+posible\b|\bè\s+possibile\b|\bé\s+possível\b"
    # "it" announcing a clause that follows: "what does it mean when the light is on?"
    r"|\bit\s+(?:mean|means|happen|happens|matter|matters)\s+(?:when|if|that)\b",
    regex.IGNORECASE,
)

# "How long", "how much", "wie lange", "cuánto tiempo": they phrase the question as "when" does, and name
# no subject ("How long can I stay?" after a visa question). Removed before counting subject words.
_HOW_MUCH = regex.compile(
    r"\bhow\s+(?:long|much|many|often|far|soon)\b|\bcombien\s+de\s+temps\b|\bwie\s+(?:lange|viel|viele|oft)\b"
    r"|\bcu[aá]nto\s+tiempo\b|\bquanto\s+tempo\b|\bkitn[aie]\b",
    regex.IGNORECASE,
)

# A message that says it starts a new subject: "one more thing:", "another question", "autre chose".
_NEW_TOPIC = regex.compile(
    r"\b(?:one\s+more\s+thing|another\s+(?:question|thing)|(?:a\s+)?(?:different|new|unrelated|separate)\s+question"
    r"|on\s+another\s+(?:note|topic)|quick\s+(?:one|question|q)|(?:une\s+)?autre\s+question|noch\s+eine\s+frage"
    r"|(?:eine\s+)?andere\s+frage|otra\s+pregunta|un['’]altra\s+domanda|outra\s+pergunta"
    r"|by\s+the\s+way|btw|übrigens|au\s+fait|por\s+cierto|a\s+prop[oó]sito|tra\s+l['’]altro|aliás"
    r")\b|另一个问题|换个问题|另外一个问题|顺便问一下|एक\s+और\s+सवाल|वैसे",
    regex.IGNORECASE,
)

# A correction of the previous question: "I meant the extender", "no, I mean the 5 GHz band", "ich meinte F5".
_CORRECTION = regex.compile(
    r"^\s*(?:(?:no|nope|non|nein|nee|não|nao|not\s+that|sorry|pardon|désolé|perdón|scusa)\b[\s,.!]*)?"
    r"(?:i\s+(?:mean|meant|was\s+asking\s+about|was\s+talking\s+about)|je\s+(?:voulais\s+dire|parlais|parle\s+de)"
    r"|ich\s+mein(?:e|te)|ich\s+sprach\s+von|(?:quise|quer[ií]a)\s+decir|me\s+refer[ií]a|me\s+refiero|hablaba\s+de"
    r"|intendevo|volevo\s+dire|parlavo\s+di|eu\s+quis\s+dizer|quis\s+dizer|me\s+referia|estava\s+falando)\b"
    r"|^\s*(?:不是[，,\s]*)?我(?:是说|说的是|指的是)|^\s*(?:नहीं[,\s]*)?मेरा\s+मतलब",
    regex.IGNORECASE,
)

# Asking for the previous answer again, otherwise: simpler, shorter, as a table, translated, in more detail.
# Word stems ("simpler", "explícamelo", "résume", "übersetze", "samjhao") and whole words ("table", "mejor").
_REFORMULATE = regex.compile(
    r"(?:simpl|summar|rephras|reword|translat|bullet|explain|elaborat"
    r"|résum|resum|tradu|expliqu|reformul|détail|detail"
    r"|einfach|kürz|zusammenf|stichpunkt|übersetz|erklär|ausführlich"
    r"|sencill|expl[ií]c|resúm|detall|sempl|riassum|spiega|spiegh|dettagl|detalh|samjha)\w*"
    r"|easier|easy|short|shorter|brief|briefly|tl;?dr|tables?|lists?|again|plain|points|plus|court|courte|tableau|liste"
    r"|kurz|tabelle|genauer|fácil|facil|simples?|cort[oa]|breve|tabla|lista|mejor|meglio|elenco|tabella|curto"
    r"|t[óo]picos|tabela|melhor|aasaan|asaan",
    regex.IGNORECASE,
)
_REFORMULATE_CJK = regex.compile(r"简单|简短|简洁|通俗|翻译|总结|表格|列表|详细|举个?例|例子|सरल|आसान|सारांश|अनुवाद|विस्तार"
                                 r"|छोटा\s+करके|छोटे\s+में|संक्षेप")
# A question that asks with a question word ("how do I export a table?") asks about the documents, not
# for the previous answer again.
_ASKS = regex.compile(
    r"^\s*(?:[¿¡]\s*)?(?:how|what|which|where|when|why|who|whats|comment|quel\w*|où|quand|pourquoi|combien|qu['’]"
    r"|wie|was|welch\w*|wo|wann|warum|wieso|cómo|como|qué|cuál\w*|dónde|cuándo|come|cosa|qual\w*|dove|quando"
    r"|perché|onde|o\s+que)\b|^\s*(?:什么|怎么|如何|为什么|哪)|^\s*(?:क्या|कैसे|कब|कहाँ|क्यों)",
    regex.IGNORECASE,
)
# "Can you explain what a p-value is": a question inside the request, about something of its own.
_EMBEDDED_QUESTION = regex.compile(
    r"\b(?:what|how|why|which|who|ce\s+que|qu['’]est|pourquoi|was|wie|warum|qué|cómo|por\s+qué|cosa|come|perché"
    r"|o\s+que|por\s+que)\b",
    regex.IGNORECASE,
)
# A definite article before a short phrase: "the default value?", "le tarif réduit ?": the thing the
# previous question was about.
_DEFINITE = regex.compile(r"^\s*(?:the|le|la|les|l['’]|der|die|das|el|los|las|il|lo|gli|o|os)\b", regex.IGNORECASE)
_CJK_ASKS = regex.compile(r"怎么|如何|哪|什么|为什么")
# Words that only soften a request or name a language to translate into.
_COURTESY = frozenset(
    "please pls plz thanks thx tho though ok okay hey sorry words"
    " favor porfa porfavor gracias merci stp svp bitte danke grazie obrigado obrigada"
    " thoda zara aur bhi mein".split()
)
# Languages to translate into: words of a request only next to "translate" ("me lo traduci in inglese?"),
# a subject otherwise ("Is Spanish easy?").
_LANGUAGES = frozenset(
    "english french german spanish italian portuguese chinese hindi anglais français allemand espagnol englisch"
    " deutsch französisch spanisch inglés español inglese italiano inglês".split()
)
_TRANSLATE = regex.compile(r"translat|tradu|übersetz|翻译|अनुवाद", regex.IGNORECASE)
# Words of a request only when nothing else is asked ("shorter please", "bullet points?"); otherwise
# ordinary words ("Do points expire?", "Do I need to appear in court?", "list models").
_WEAK_REFORMULATE = frozenset(
    "court courte points list lists liste lista plus table tables again plain short brief easy easier simple simples facil fácil".split())

# Choosing between options the previous question named: "which one would you pick", "which of the two",
# "laquelle", "welcher von beiden", "cuál de los dos", "qual delas", "quale dei due", "选哪个", "दोनों में से".
# Not when the question names its options itself ("which is cheaper, the Basic or the Plus plan?").
_CHOICE = regex.compile(
    r"\bwhich\s+(?:one|ones)\b(?!\s+of\b)|\bthe\s+(?:first|second|third|last|other|cheaper|former|latter)\s+one\b"
    r"|\bthe\s+(?:former|latter)\b|\bwhich\s+of\s+(?:(?:the\s+)?(?:two|three|both)|them|(?:these|those)(?!\s+\p{L}{3,}(?<!\b(?:is|are|has|have|would|should|will|can|does|do|costs?|works?|seems?))\b))\b"
    # "between the two" closing its clause: not "transfer files between two computers"
    r"|\b(?:between|among)\s+(?:the\s+)?(?:two|three|both|them|these|those)\s*(?=$|[?!.,;:])|\beither\s+of\s+them\b"
    # "laquelle est la plus…", not the relative pronoun after a preposition ("le délai dans lequel…")
    r"|(?<!\b(?:dans|par|pour|sur|avec|sans|selon|vers|entre|parmi|chez|sous|contre)\s+)\b(?:lequel|laquelle|lesquels|lesquelles)\b"
    r"|\b(?:des|entre\s+les)\s+deux\s*(?=$|[?!.,;:])"
    r"|\bwelche[rsnm]?\s+(?:davon|von\s+(?:den\s+)?(?:beiden|dreien|ihnen)|der\s+beiden)\b|\bvon\s+beiden\s*(?=$|[?!.,;:])"
    r"|\bcu[aá]l(?:es)?\s+de\s+(?:(?:los|las)\s+(?:dos|tres)|ell[oa]s|est[oa]s)\b|\bentre\s+(?:los|las)\s+dos\b"
    r"|\bentre\s+(?:amb[oa]s|ell[oa]s)\b"
    r"|\bqua(?:l|is)\s+(?:delas|deles|dos\s+dois|das\s+duas)\b|\bentre\s+(?:os\s+dois|as\s+duas|eles|elas)\b"
    r"|\bqual(?:e|i)?\s+(?:dei|delle|tra\s+(?:i|le)|fra\s+(?:i|le))\s+(?:due|tre)\b|\btra\s+(?:i|le)\s+due\s*(?=$|[?!.,;:])"
    r"|选哪|哪(?:一)?(?:个|种|款)(?:更|比较|最)?(?:好|划算|便宜|合适|适合|值得|推荐)|两个(?:中|里)|这两(?:个|种|款|者)"
    r"|(?:दोनों|इनमें|उनमें)\s+से|\b(?:dono|inmein|inme|in\s+mein)\s+(?:mein\s+|me\s+)?se\b",
    regex.IGNORECASE,
)
_OPTIONS_NAMED = regex.compile(
    r"\b(?:or|ou|oder|oppure|o\s+(?:el|la|los|las|il|lo|le|un|una))\b|还是|或者|\bया\b", regex.IGNORECASE)
# The previous answer, named ("your answer", "you said 3", "übersetz die Antwort", "tu respuesta"), or to be
# said again in another language ("put that in spanish", "traduis ça"): about what was said before.
_ANSWER = regex.compile(
    r"\b(?:your|ur|that|this|the\s+(?:last|previous|above|first|second))\s+(?:answer|reply|response|explanation)\b"
    r"(?!\s+(?:time|times|rate|code|codes|header|headers|body|key|sheet|form|template)\b)"
    r"|\byou\s+(?:just\s+)?(?:said|wrote|mentioned|told\s+me|gave\s+me|listed|suggested|recommended)\b"
    r"|\b(?:ta|votre|cette|la\s+dernière)\s+réponse\b|\b(?:tu\s+as|vous\s+avez)\s+(?:dit|écrit|mentionné)\b"
    r"|\b(?:deine|(?-i:Ihre)|diese|die\s+letzte)\s+antwort\b|\b(?:du\s+hast|sie\s+haben)\s+(?:gesagt|geschrieben)\b|\bsagtest\b"
    r"|\b(?:tu|esa|esta)\s+respuesta\b|\b(?:dijiste|has\s+dicho|me\s+dijiste)\b"
    r"|\b(?:tua|sua|questa|quella)\s+risposta\b|\bhai\s+detto\b"
    r"|\b(?:tua|essa|esta)\s+resposta\b|\b(?:você|vc)\s+disse\b|\bdisseste\b"
    r"|你(?:的|刚才的|上面的)?(?:回答|答案)|你(?:刚才|刚刚)?说(?!明)|刚才(?:说|的)"
    r"|\b(?:translat|tradu|übersetz|summar|résum|resum|rephras|reformul|kürz)\w*\s+(?:\w+\s+)?(?:the|la|die|a|el|il)"
    r"\s+(?:answer|réponse|antwort|resposta|respuesta|risposta)\b"
    r"|\b(?:put|say|write|give|send|translate)\s+(?:that|it)\s+(?:(?:in|into)\s+\p{L}+\s*(?:$|[?!.,;:]|for|please|pls|so))"
    r"|\b(?:das|es)\s+(?:\w+\s+){0,2}(?:auf|ins)\s+\p{L}+\s+übersetz|\bübersetz\w*\s+(?:du\s+)?(?:das|es)\b(?!\s+(?-i:\p{Lu}))"
    r"|\b(?:traduis|traduire|traduce|traducir|traduzir|traduci|tradurre)[\s-]*(?:ça|cela|isso|esto|eso)\b"
    r"|\b(?:traduis|traduire|traduce|traducir|traduzir|traduci|tradurre)[\s-]*(?:le|la|lo)\s*(?=$|[?!.,;:]|\s+(?:en|in|em|al|ao)\s)"
    r"|\b(?:me\s+lo|mi\s+lo|isso)\s+(?:traduis|traduces|traduce|traduci|traduz)(?!ion)\w*"
    r"|(?:आपका|तुम्हारा|आपने|तुमने)\s+(?:जवाब|उत्तर|कहा)|\b(?:aapka|tumhara)\s+jawab\b|\b(?:aapne|tumne)\s+kaha\b",
    regex.IGNORECASE,
)
# About the previous answer, in words that, as written here, are seldom about anything else: not
# understood ("j'ai rien compris", "没看懂"; alone, not "non ho capito come si attiva il roaming"), doubted,
# asked for again, its source, its steps done without help. Each is bounded (the end of the message, a
# pronoun, no capitalised noun after a German "das") so an ordinary question with the same words stays new.
_ASK_AGAIN = regex.compile(
    r"\b(?:i\s+)?(?:don['’]?t|do\s+not|didn['’]?t|did\s+not)\s+(?:understand|get)\s*(?:it|that|this|you|a\s+word)?\s*(?:$|[?!.,;:])"
    r"|\blike\s+i['’]?\s*a?m\s+(?:a\s+)?(?:\d+|five|ten|a\s+(?:child|kid))\b|\beli5\b"
    r"|\bj['’]?ai\s+(?:rien|pas)\s+compris\b\s*(?:$|[?!.,;:])|\bplus\s+simplement\b"
    r"|\b(?:verstehe?\s+ich\s+nicht|nicht\s+verstanden)\b\s*(?:$|[?!.,;:])"
    r"|\bno\s+(?:entiendo|entendí)\b(?:\s+(?:nada|eso|tu\s+respuesta))?\s*(?:$|[?!.,;:])"
    r"|\b(?:non\s+ho\s+capito|não\s+entendi|nao\s+entendi)(?:\s+(?:niente|nada|bene))?\s*(?:$|[?!.,;:])"
    r"|\bjeito\s+mais\s+simples\b"
    r"|没(?:看)?懂|不明白\s*[?？!！。,，]?\s*$|更简单(?:点|一点|些|的话)|再说一遍|重新说|换个说法"
    r"|समझ\s+नहीं\s+(?:आया|आई)\s*[?!।,]?\s*$|\bsamajh\s+nahi\s+aaya\b\s*(?:$|[?!.,;:])"
    # doubting it: "are you sure??", "stimmt das?", "¿de verdad?", "真的吗", "पक्का?"
    r"|\b(?:are|r)\s+(?:you|u)\s+sure\b|^\W*(?:really|sure|seriously)\s*\?|\bis\s+that\s+(?:right|correct|true)\s*[?!.]*\s*$"
    r"|\b(?:t['’]es|tu\s+es|vous\s+êtes)\s+(?:sûre?\b|sure?\s*[?!.]*\s*$)|^\W*vraiment\s*\?|\bc['’]est\s+s[ûu]r\s*\?"
    r"|\b(?:bist\s+du|sind\s+sie)\s+(?:dir\s+|sich\s+)?sicher\b|\bstimmt\s+das\b(?!\s+(?-i:\p{Lu}))|\bwirklich\s+so\b"
    r"|^\W*wirklich\s*\?|\b(?:estás|está|esta)\s+segur[oa]\s*(?:$|[?!.,;:]|de\s+(?:eso|que))"
    r"|^\W*(?:de\s+verdad|en\s+serio|seguro)\s*\?"
    r"|\bsei\s+sicur[oa]\b|^\W*(?:davvero|sicuro)\s*\?|\btem\s+certeza\b|^\W*(?:sério|serio|mesmo)\s*\?"
    r"|真的吗|确定吗|你确定|^\W*(?:पक्का|pakka)\s*[?!]"
    r"|\b(?:don['’]?t|do\s+not)\s+think\s+(?:that['’]?s|thats|that\s+is|it['’]?s|its)\s+(?:right|correct|true)\b"
    r"|\b(?:that['’]?s|thats|that\s+is)\s+(?:not\s+(?:right|correct|true)|wrong|incorrect)\b"
    r"|^\W*(?:hmm+\W+|but\s+)?(?:that|this|it)\s+(?:doesn['’]?t|does\s+not)\s+(?:seem|sound|look)\s+(?:right|correct)"
    r"(?:\s+to\s+me)?\s*(?:$|[,.!?](?!.*:))"
    r"|^\W*(?:echt|wirklich)\s+so\s+\p{L}+\s*[?!]|^\W*(?:really\s+)?that\s+(?:expensive|long|much|many|short|cheap|high|low|late|early|far)\s*[?!]"
    # whether what was said still holds: "does that change anything?", "ändert das was?"
    r"|\b(?:does|would|will)\s+(?:that|this|it)\s+change\s+(?:anything|something|the)\b|\bändert\s+das\b(?!\s+(?-i:\p{Lu}))"
    r"|\b(?:heißt|bedeutet)\s+das(?:[\s?!]*$|\s+(?-i:er|sie|es|ich|du|wir|ihr|man|jetzt|dann|nicht|Sie)\b(?!-))"
    r"|\bça\s+change\s+quelque\s+chose\b|\b(?:eso|esto)\s+cambia\b|\bcambia\s+qualcosa\b|\bisso\s+muda\b"
    # where the previous answer comes from: "where does it say that?", "wo steht das?", "dónde dice eso?"
    r"|\bwhere\s+(?:does\s+it|is\s+(?:that|this|it))\s+(?:say|said|written|stated)\s*(?:that|this|it|so)?\s*(?:$|[?!.,;:]|in\b)"
    r"|\bwo\s+steht\s+(?:das|es)\b(?!\s+(?-i:\p{Lu}))"
    r"|\boù\s+(?:est[\s-]+ce\s+(?:que\s+c['’]est\s+)?écrit|c['’]est\s+écrit)\s*(?:$|[?!.,;:])"
    r"|\bd[oó]nde\s+(?:dice|pone|est[aá]\s+escrito)\s+(?:eso|esto)\b|\bdove\s+(?:c['’]è\s+scritto|lo\s+dice)\s*(?:$|[?!.,;:])"
    r"|\bonde\s+(?:diz|está\s+escrito)\s+(?:isso|isto)\b|哪(?:里|儿)?(?:写|说)(?:的|着)"
    # the previous answer as a list or table: "kannst du das als nummerierte liste schreiben"
    r"|(?:\b(?:that|it|this|ça|eso|esto|isso|questo|quello)|\b(?:kannst|könntest)\s+du\s+(?:mir\s+)?das"
    r"|\b(?:me|te|mi|ti)\s+l[oa]s?)\s+(?:\w+\s+){0,2}(?:as|in|into|als|en|como|em)"
    r"\s+(?:(?:a|an|une|un|eine|einer|una|uma)\s+)?(?:\w+\s+)?(?:list|table|bullets?|liste|tabelle|lista|tabla|tableau"
    r"|tabela|tabella|stichpunkte\w*|steps)\b"
    # done what it said, and it did not help: "done, still the same", "kar diya, abhi bhi wahi"
    r"|^\W*(?:ok\W+)?(?:i\s+)?(?:done|did\s+(?:that|it)|tried\s+(?:that|it|this|those)|c['’]est\s+fait|j['’]ai\s+essayé|fatto|ho\s+provato"
    r"|hecho|ya\s+lo\s+hice|lo\s+intenté|feito|já\s+fiz|já\s+tentei|gemacht|hab\s+ich\s+(?:gemacht|versucht)|kar\s+diya"
    r"|ho\s+gaya|कर\s+दिया|试过了|做了|弄了)(?:\s*(?:$|[,.!]|\s(?:but|still|and|ma|mais|aber|pero|mas|lekin|par)\b))"
    r"|\bl['’]ho\s+fatto\b|\bje\s+l['’]ai\s+fait\b|\blo\s+he\s+hecho\b|\bich\s+hab(?:e)?\s+(?:das|es)\s+(?:gemacht|versucht)\b"
    r"|\b(?:repeat|répète|répétez|repite|ripeti|repete)[\s-]+(?:that|it|this|the\s+answer|please|again|ça|le|la|lo|isso)\b"
    r"|\b(?:expand|elaborate)\s+(?:on\s+(?:that|it|this|the\s+\w+\s+(?:part|bit|step)s?)|a\s+bit|a\s+little)\b"
    r"|\bmore\s+about\s+the\s+\w+\s+part\b"
    r"|\bwhere\s+did\s+(?:you|u)\s+(?:get|find|read)\s+(?:that|this|it)\b|\bde\s+onde\s+(?:vc|você|voce)\s+tirou\b"
    r"|\bd['’]où\s+(?:tu\s+sors|vient)\s+(?:ça|cette\s+info)|\bwoher\s+(?:hast\s+du|haben\s+sie|stammt)\s+(?:das|diese)\b"
    r"|\bde\s+d[oó]nde\s+(?:sacaste|has\s+sacado)\b|\bda\s+dove\s+l['’]hai\s+preso\b|你从哪"
    r"|\bstill\s+(?:the\s+same|not\s+working|doesn['’]?t\s+work)\b|\babhi\s+bhi\s+wahi\b|还是不行",
    regex.IGNORECASE,
)
# A message that opens with the request ("simpler please, im not a math person", "kürzer bitte").
_ASK_AGAIN_FIRST = regex.compile(
    r"^\s*(?:simpler|shorter|easier|slower|einfacher|kürzer|plus\s+(?:simple|court|simplement)|más\s+(?:simple|corto|fácil)"
    r"|più\s+(?:semplice|breve)|mais\s+(?:simples|curto))\s*(?:$|[,.!?;:]|please|pls|plz|bitte|por\s+favor|per\s+favore|stp|svp)",
    regex.IGNORECASE,
)
# A previous question that names options ("the difference between the Basic and the Premium plan", "A or
# B?"), then a question that picks one ("welcher lohnt sich mehr für skiurlaub").
_COMPARES = regex.compile(
    r"\b(?:difference|differences|compare|comparison|vs|versus|différence|différences|comparer|unterschied|unterschiede"
    r"|vergleich|diferencia|diferencias|comparar|differenza|differenze|confronto|diferença|diferenças)\b|区别|不同|比较"
    r"|\bअंतर\b|\bफर्क\b|\bfark\b|\bfarq\b", regex.IGNORECASE)
_PICKS = regex.compile(
    # "which" standing for one of them, not before a noun of its own ("which browser is supported?")
    r"^\s*(?:[¿¡]\s*)?(?:which\s+(?:is|are|would|should|do|does|was|will|has|costs?|works?|lasts?)"
    r"|welche[rsnm]?\s+(?:ist|sind|wäre|lohnt|würde|würdest|sollte|hat|kostet|passt|empfiehlst)"
    r"|lequel|laquelle|lesquels|lesquelles|cu[aá]l(?:es)?\s+(?:es|son|me|te|conviene|sale|vale|recomiendas|ser[ií]a)"
    r"|qua(?:l|is)\s+(?:é|e|são|sai|compensa|vale|recomenda|seria|me)|qual[ei]?\s+(?:è|e|conviene|mi|consigli|sarebbe))\b"
    # ... and not before a noun phrase of its own ("which is the default port?", "qual é o prazo?")
    r"(?!\s+(?:the|a|an|my|le|la|les|l['’]|der|die|das|den|el|los|las|il|lo|gli|o|os|as|un|una|um|uma)\b)"
    r"|^\s*哪(?:个|一个|种)(?:更|比较|最|好|划算|便宜)", regex.IGNORECASE)

# Reporting that something did not work ("ye step kaam nahi kar raha", "it didn't work"): about what the
# previous answer said to do when it points at it.
_DID_NOT_WORK = regex.compile(
    r"\b(?:doesn['’]?t|does\s+not|didn['’]?t|did\s+not|isn['’]?t|won['’]?t)\s+work|\bnot\s+working\b|\bkaam\s+nahi"
    r"|काम\s+नहीं|\bne\s+(?:marche|fonctionne)\s+pas\b|\bfunktioniert\s+nicht\b|\bklappt\s+nicht\b|\bno\s+funciona\b"
    r"|\bnon\s+funziona\b|\bnão\s+funciona\b|不行|没用|没反应",
    regex.IGNORECASE,
)
# Reporting, as the opening and with no subject of its own, that what the answer said did not work ("didnt
# work, screen still shows E4", "no funciona, sigue igual", "klappt nicht"); "it didn't work" is read by the
# pronoun. Only at the opening: "my printer does not work after the update, what now?" is a question of its own.
_FAILED_FIRST = regex.compile(
    # the openers possessive: tried one way only, or "ok " x 20,000 took 0.5 s, growing faster than the text
    r"^\W*+(?:(?:ok(?:ay)?|hmm+|sorry|well|but|still|nope|tried(?:\s+(?:it|that))?)\W+)*+(?:still\s+)?"
    r"(?:(?:doesn['’]?t|does\s+not|didn['’]?t|did\s+not|won['’]?t)\s+work|not\s+working"
    r"|no\s+(?:funciona|funcion[oó])|non\s+(?:funziona|ha\s+funzionato)|não\s+(?:funciona|funcionou)"
    r"|(?:ça\s+)?ne\s+(?:marche|fonctionne)\s+pas|(?:ça\s+)?marche\s+pas|(?:funktioniert|klappt|geht)\s+nicht"
    r"|kaam\s+nahi|काम\s+नहीं|不行|没用|没反应)\b"
    # Chinese, with what was done before it and no word boundary after: "按了没反应啊", "重启了还是不行"
    r"|^\W*+(?:\p{Han}{1,4}了\W*+)?(?:还是|也)?(?:不行|没用(?![过完的])|没反应)(?![过完动])",
    regex.IGNORECASE,
)
# Words that make a Chinese question one of its own.
_CJK_QUESTION_WORDS = (r"怎么|怎样|咋|什么|啥|多少|多久|多长|多大|多远|多高|多重|几|哪|吗|谁|为什么|为何|何时|是否|能否|可以|如何"
                       r"|(\p{Han})[不没]\1")  # and the A-not-A questions: 要不要, 会不会, 能不能, 有没有…
# "孩子呢？6岁", "周末呢": a short topic of no question of its own, then 呢 ("and what about ...?"); not
# "年假怎么申请呢？", where 呢 ends a question asked in full.
_TOPIC_NE = regex.compile(r"^\s*(?:那|那么)?(?:(?!" + _CJK_QUESTION_WORDS + r")[^?？。，,\s]){1,8}呢\s*(?:[?？]|$)")
# A fragment that ends with a Hindi postposition: "और 2 साल से छोटे बच्चों के लिए?", "sunday ke liye?".
_FRAGMENT_END = regex.compile(r"(?:के\s+लिए|\bke\s+liye)\s*[?？!.]*\s*$", regex.IGNORECASE)

# "Same question for the petrol version", "pareil pour", "gleiche Frage", "misma pregunta".
_SAME_QUESTION = regex.compile(
    r"(?<!\bthe\s)\b(?:same\s+(?:question|for|with)|même\s+question|pareil\s+pour|idem|gleiche\s+frage|dieselbe\s+frage"
    r"|misma\s+pregunta|lo\s+mismo\s+(?:para|con)|stessa\s+domanda|mesma\s+pergunta)\b|同样的问题|同样问题|वही\s+सवाल"
    r"|^\W*(?:\w+\s+){0,3}same\s*[?!.]*\s*$|(?<!(?:和|与|跟).{0,20})(?:也一样|一样吗|同样吗)",
    regex.IGNORECASE,
)
# Something measured against what was said, with nothing to measure it against in the message: "thats
# pricey, anything cheaper", "uf muy caro, hay algo más básico", "qualcosa di meno caro?". With "than" it
# names its own ("anything cheaper than the gold plan?"), and with two subject words after it ("is there
# anything better for back pain?", "quelque chose de plus simple pour débuter en photo ?"). "Isn't there a
# quicker way" too.
_COMPARED = regex.compile(
    r"\b(?:an?|any)\s+(?:quicker|faster|easier|simpler|cheaper|better|shorter)\s+(?:way|option|method|route|alternative)\b"
    r"|\b(?:anything|something|any\s+(?:option|options|plan|plans|one)|algo|alguna\s+opción|qualcosa(?:\s+di)?|quelque\s+chose(?:\s+de)?"
    r"|etwas|was(?=\s+(?:günstiger|billiger|kleiner|größer|einfacher|besser))|alguma\s+coisa|kuch|koi)\s+"
    r"(?:(?:more|less|más|menos|più|meno|plus|moins|mais|aur)\s+(?!(?:than|que|als|di)\b)\p{L}+|cheaper|bigger|smaller|faster|shorter|longer|closer|nearer"
    r"|better|simpler|easier|lighter|earlier|later|günstiger\w*|billiger\w*|kleiner\w*|größer\w*|einfacher\w*|besser\w*|sasta|saste)\b",
    regex.IGNORECASE,
)
# "Than" right after the comparative (a word between at most: "anything cheaper for kids than..."), not a
# relative pronoun or preposition further on ("algo más barato para el finde", "etwas Günstigeres, das ich
# als Student buchen kann"). Matched where the comparative ends: a lookahead there scanning to the end of
# the message would have been quadratic on "anything cheaper " x 20,000.
_THAN = regex.compile(r"\W*+(?:\p{L}+\s+)?(?:than|que|als|di|do\s+que)\b", regex.IGNORECASE)
# Whether the asker's own case changes the answer: "sou estrangeiro, muda alguma coisa?", "does that change
# anything if I work part time", "ça change quelque chose ?", "ändert das was?".
_CHANGES_ANYTHING = regex.compile(
    # English: after "that"/"this"/"it" or after the case set off by a comma, or nearly the whole message
    r"(?:\b(?:that|this|it)|,)\s*(?:\w+\s+){0,2}(?:(?:change|changes)\s+anything\b|makes?\s+a\s+difference\b)"
    r"|^\W*(?:\w+\W+){0,2}(?:anything\s+change|(?:change|changes)\s+anything|makes?\s+a\s+difference)\W*$"
    # the other languages: at the end, where nothing of its own follows ("¿cambia algo en la renta este año?" asks
    # about the tax return)
    r"|(?:\bcambia\s+(?:en\s+)?algo|\bmuda\s+(?:alguma\s+coisa|algo|nada)|\bchange\s+(?:quelque\s+chose|qqch|rien)"
    r"|\bändert\s+(?:(?:das|sich)\s+)?(?:da\s+)?(?:was|etwas)|\bcambia\s+qualcosa)[\s?!.]*+$"
    r"|(?<!\baur\b.{0,40})\bkuch\s+(?:farak|fark|farq)\b|(?<!(?:和|与|跟|对).{0,20})有(?:什么|啥)(?:不同|区别|影响)吗",
    regex.IGNORECASE,
)
# Hindi's "then" and "will it do" at the end, after a verb: "khatam ho jaye to?" (and if it runs out?),
# "mera license 6 mahine purana hai, chalega?" (is mine fine?). Not English "who do I talk to?", nor a
# question of its own ("kya mera purana charger naye laptop pe chalega?").
_HINDI_THEN = regex.compile(
    r"\b(?:ho|hai|jaye|jaaye|jae|gaya|gayi|gaye|kare|karein|karu|karun|hua|hui|rahe|raha|rahi|diya|liya)\s+to\s*+[?？]++\s*+$"
    r"|(?:हो|है|जाए|जाये|गया|गई|करें|हुआ|हुई|रहे|दिया|लिया)\s+तो\s*+[?？]++\s*+$"
    r"|(?:^|[,，]\s*+)(?:chalega|chalegi|chalenge|चलेगा|चलेगी)[\s?？]*+$",
    regex.IGNORECASE,
)
# Doubting the answer with what one thought, said first: "i thought it was free", "hä, ich dachte alle
# 15.000 km, nicht 30.000?" (a pronoun or a number after it), then two words at most that name something;
# not "I thought it would be easy to set up the VPN on Linux, how do I do it?".
_THOUGHT = regex.compile(
    r"^\W*+(?:\p{L}+\W+)?(?:i\s+thought|ich\s+dachte|je\s+(?:pensais|croyais)|pensaba|cre[ií]a|pensavo|credevo|eu\s+achava|pensei"
    r"|maine\s+socha)\s++(?:(?:that|dass|que|che)\s++)?(?:it|that|you|they|there|this|es|das|du|sie|ils|c['’]|era|fosse|était|was|\p{L}*\s*\d)",
    regex.IGNORECASE,
)
# Whether what was said fits the asker's case, however long the case: "we're about 140 adults plus maybe 20
# kids, does that work or would we have to split...", "..., would that be enough?". "Is that ok / fine / a
# problem" only after a short case: "my baby sleeps 16 hours a day, is this ok?" asks about the baby.
_DOES_THAT_WORK = regex.compile(
    r"\b(?:does|do|would|will|is|could)\s+(?:that|this)\s+(?:still\s+)?(?:(?P<fits>work|do|suffice|be\s+enough|enough)"
    r"|be\s+(?:ok|okay|fine|a\s+problem)|ok|okay|fine|a\s+problem)(?=\s*+(?:$|[?!.,;]|or\b))",
    regex.IGNORECASE,
)
# Chinese "also" before a bare verb at the end: the asker's own case, put to what was asked ("我去年只工作了
# 半年，也要办吗", "留学生也可以吗"); not after a question of its own ("酒店可以寄存行李吗？退房以后也可以吗").
_CJK_ALSO = regex.compile(r"^[^吗?？]*也[^\s，,。？?！!]{1,3}吗[\s?？]*+$")
# An alternative to what was said, at the end: "overnight in the fridge ok instead?", "und stattdessen?".
_INSTEAD = regex.compile(
    r"\b(?:instead|à\s+la\s+place|plutôt|stattdessen|en\s+su\s+lugar|en\s+cambio|invece|em\s+vez\s+disso|no\s+lugar)"
    r"\s*[?!.]*\s*$",
    regex.IGNORECASE,
)

# Drawing on what was said: "which group would she go in then", "pourquoi c'est plus court alors ?". A
# message of its own seldom ends on "then", unless it set its own condition first ("if I miss the
# deadline, what happens then?", "wenn ich die Frist verpasse, was passiert dann?": new).
_THEN = r"(?:then|alors|então|entao|entonces|allora|dann)"
_DRAWS_ON = regex.compile(
    # the word first, then what must not come before it: each looked at only where the word is
    r"\b" + _THEN + r"(?<!\b(?:since|until|till|by|back|from|before|after|now\s+and|than\s+and|seit|bis|vor|nach|desde|hasta"
    r"|para|depuis|jusque|jusqu['’]|avant|après|até|antes|depois|da|prima|dopo|fino\s+ad?)\s*" + _THEN + r")"
    r"[\s?？!.]*$",
    regex.IGNORECASE,
)
# German puts that "then" after the verb and its subject: "wir haben zwei kinder, zahlen wir dann doppelt?";
# not with a subject of its own after it ("ich ziehe nach München, muss ich dann mein Auto ummelden?") or a
# question of its own before ("Wann kommt die Post und muss man dann unterschreiben?").
_GERMAN_THEN = regex.compile(r"\b\p{L}+\s+(?:ich|wir|man|sie|er|es|du|ihr)\s+dann\b", regex.IGNORECASE)
_OWN_CONDITION = regex.compile(
    r"\b(?:if|when|once|unless|suppose|supposing|assuming|say|in\s+case|before|during|back\s+in|si|cuando|quand|lorsque"
    r"|supposons|wenn|falls|sobald|angenommen|se|quando|caso|supongamos|mettiamo|supondo|agar|jab|yadi)\b",
    regex.IGNORECASE,
)

# A fragment that starts with a preposition ("for a 6 year old?", "para niños?", "per day or per book?",
# "jusqu'à quel montant"): the rest of its question is the previous one.
_FRAGMENT = regex.compile(
    r"^[\s¿¡(\"'«]*(?!(?-i:\p{Lu}{2,})\b)(?:a(?=\s+\d)|for|to(?=\s+(?:the|a|an|my|\d|(?-i:\p{Lu})))|per|with|without|in|on|at|during|after|before|from|by|via|under|over|about|until"
    r"|pour|à|au|aux|avec|sans|dans|après|avant|pendant|par|jusqu['’]?(?:à|a|au)?|chez|sur|sous|en"
    r"|für|mit|ohne|im|beim|vom|am(?!\s+i\b)|ins|nach|vor|während|bei|bis|pro|ab|zum|zur"
    r"|para|pra|con|sin|del|al|después|antes|durante|por|hasta|desde|com|sem|até|nos|nas|em"
    r"|na|nas|pelo|pela|ao|aos|con|senza|nel|nella|nei|negli|ai|agli|sui|col|dopo|prima|fino|dal|dalla|sul|sulla)\b"
    r"(?![\-.'’_])"
    # "¿Por qué…?", "Bis wann…?", "With whom…?": a question word after it makes a question of its own
    r"(?!\s+(?:qu[eé]|qui[eé]n\w*|cu[aá]nd\w*|cu[aá]l\w*|d[oó]nde|what|when|whom|which|who|how|quoi|quand|qui|quel\w*"
    r"|wann|wem|wen|was|welch\w*|wie|quanto|quale|chi|cosa|quem|quando|que|qual\w*))",
    regex.IGNORECASE,
)
# What a question measures, when it names nothing else, is the measure of what was asked before: its price
# ("cuesta", "kostet", "teuer", "Eintritt"), its length ("dura", "dauert"), per what ("por persona", "pro
# Nacht"), its limit ("no máximo"). Not words that are something else in another language ("mal", "ore",
# "tag", "cara").
_MEASURES = frozenset(
    "cost costs cuesta cuestan custa custam costa costano coûte coûtent kostet kosten "
    "take takes lagta lagti lagte lagega lagegi last lasts dura duran dure durent dauert dauern demora demoram tarda tardan "
    "person persons people persona personas personne personnes pessoa pessoas personen night nights noche noches "
    "nuit nuits nacht nächte noite noites notte notti day days día días jour jours tage dia dias giorno giorni "
    "week weeks semana semanas semaine semaines woche wochen settimana settimane month months meses mois monat "
    "monate mês mese mesi year years año años ans jahr jahre ano anos anno anni hour hours hora horas heure heures "
    "stunde stunden minute minutes minuto minutos minuten minuti time times vez veces fois volta volte "
    "vezes maximum máximo maximo massimo max minimum mínimo minimo "
    "price prices precio precios prix preis preise prezzo prezzi preço preços fee fees tarifa tarifas tarif "
    "gebühr gebühren eintritt admission entrada entrée ingresso expensive cher chère teuer caro costoso".split())
# Two of these make a question of its own ("how many days in a year", "wie viele Stunden hat eine Woche?"),
# unless asked per each ("how much per hour and per day").
_PER = regex.compile(r"\b(?:per|por|pro|par|a\s+la|al)\b", regex.IGNORECASE)
_TIME_UNITS = frozenset(
    "day days día días jour jours tage dia dias giorno giorni week weeks semana semanas semaine semaines woche "
    "wochen settimana settimane month months meses mois monat monate mês mese mesi year years año años ans jahr "
    "jahre ano anos anno anni hour hours hora horas heure heures stunde stunden minute minutes minuto minutos "
    "minuten minuti".split())
# "Too", "aussi", "auch": they add to what was asked, and name nothing ("les bouchons en plastique aussi ?").
# (Most of them are function words already; these are the ones that are not everywhere.)
_ADDITIVE_WORDS = frozenset("too aussi également auch ebenfalls también tambien tampoco anche também tambem bhi".split())
# "Too" in a short question: "weekend too?", "geht das auch online", "gilt die auch für...".
_ADDITIVE = regex.compile(
    r"\b(?:too|as\s+well|aussi|également|auch|ebenfalls|tambi[eé]n|tampoco|anche|tamb[eé]m|bhi)\b|也|\bभी\b"
    # "weekends different?": different from what was said
    r"|\b(?:different|differently)\s*[?!.]*\s*$",
    regex.IGNORECASE,
)

# What only opens a message: "ok and to New York", "hmm, and the weekend?". Possessive: a message of
# thousands of "ok"s would otherwise take seconds to read (each pattern that starts with it backtracked
# through every split of them), with the event loop waiting.
_FILLER = (r"(?:(?:ok|okay|ok[ae]y|hmm+|ah|oh|alright|right|thanks|thx|cool|great|d['’]accord|merci|danke|gut"
           r"|gracias|vale|bueno|grazie|va\s+bene|ok\s+so|obrigad[oa]|beleza|好的|嗯|ठीक\s+है|accha|acha|got\s+it|gotcha)\b[\s,!.]*+)*+")
_OPENING = regex.compile(r"^\s*" + _FILLER, regex.IGNORECASE)
# "Also, is there a bike subsidy?", "außerdem: gibt es...": adding a question of its own, not continuing.
_ALSO_ASKS = regex.compile(
    r"^\s*" + _FILLER + r"(?:also|additionally|außerdem|zudem|en\s+plus|además|inoltre|além\s+disso)[\s,:;-]+"
    r"(?:is|are|do|does|did|can|could|will|would|should|how|what|where|when|which|who|why|est[\s-]+ce|gibt|hay"
    r"|c['’]è|tem|há)\b",
    regex.IGNORECASE,
)
# A question that starts by continuing the previous one.
_CONNECTIVE = regex.compile(
    r"^[\s¿¡(\"'«]*" + _FILLER + r"(?:"
    r"and|also|but|so|then|plus|or|even|same|what\s+about|how\s+about|what\s+if|what\s+else|how\s+so"
    r"|et|mais|alors|aussi|puis|ou|quid|pareil|même"
    r"|und|aber|auch|dann|oder|sonst|was\s+ist\s+mit|wie\s+steht\s+es\s+mit|und\s+wenn"
    r"|y|e|pero|también|entonces|qué\s+tal|y\s+si"
    r"|ma|anche|quindi|oppure|e\s+se"
    r"|mas|também|então"
    r")(?![\p{L}\p{M}\p{N}\-.'’_])"  # a word of its own: not "E-mail", "e.g.", "So-called", "E2E"
    r"|^\s*" + _FILLER + r"(?:还有|那么|那|而且|另外|并且|那如果)"
    r"|^\s*" + _FILLER + r"(?:और|तो|लेकिन|पर|फिर|आणि|मग|पण|aur|lekin|phir)(?![\p{L}\p{M}])",
    regex.IGNORECASE,
)
# Connectives that only ever continue: "what about LM Studio?", "and how about vLLM?", "qué tal en
# invierno?": a follow-up however much follows them.
_ONLY_CONTINUES = regex.compile(
    r"^[\s¿¡(\"'«]*(?:(?:and|et|und|y|e)\s+)?(?:what\s+about|how\s+about|what\s+else|how\s+so|quid|pareil|même"
    r"|was\s+ist\s+mit|wie\s+steht\s+es\s+mit|qué\s+tal|e\s+quanto\s+a|e\s+per|和\s*呢)\b",
    regex.IGNORECASE,
)
# "And if I cancel after six months?", "und wenn ich...", "और अगर...": the previous question, with a new
# condition; unless a question of its own follows the condition ("y si me equivoco, cómo la corrijo?").
_AND_IF = regex.compile(
    r"^[\s¿¡(\"'«]*" + _FILLER + r"(?:(?:and|et|und|y|e|but|mais|aber|pero|ma|mas|so|alors|also|entonces|quindi|então)\s+(?:if|si|wenn|se)\b"
    r"|(?:even\s+(?:if|when)|m[êe]me\s+(?:si|quand)|auch\s+wenn|selbst\s+wenn|incluso\s+(?:si|cuando)|aun\s+si|anche\s+(?:se|quando)"
    r"|mesmo\s+(?:se|quando))\b|即使|就算"
    r"|और\s+अगर|\baur\s+agar\b|那(?:我|你|我们)?(?:如果|要是))",
    regex.IGNORECASE,
)
# A subject set apart before the question about it: "the kids' pool, is it heated?", "las clases de
# spinning, ¿hay que reservarlas?".
_TOPIC = regex.compile(
    r"\s*(?:the|le|la|les|l['’]|der|die|das|el|los|las|il|lo|gli|o|os|a|as)\s+[^,;:?]*\p{L}[^,;:?]*[,;:]",
    regex.IGNORECASE)
# Chinese asks "and X?" with a final 呢 ("速度呢？", "LM Studio 呢？").
# Not after a question word: "年假怎么算呢？", "试用期是多久呢" ask in full, 呢 only softening them.
# (possessive: "呢" then 20,000 spaces and a letter backtracked through the spaces, quadratic)
_FINAL_NE = regex.compile(r"^(?:(?!" + _CJK_QUESTION_WORDS + r").)*呢\s*+[?？]?\s*+$", regex.DOTALL)

# Pronouns and demonstratives that stand for something said before. German "das", "dies", "die", "den",
# "dem" only before a lowercase word or the end, in a question typed with capitals (before a capitalised
# noun they are articles: "das Modell"; see _reference), and German "es" only beside a word only German
# has (_GERMAN): Spanish "es" is "is" ("¿Qué es BM25?").
_REFERENCE_WORDS = frozenset(
    "it its itself they them their theirs mine this that thats these those there he she him her his one ones "  # en
    "il elle ils elles ça cela ceci celui celle ceux celles lui leur leurs "  # fr
    "er ihn ihm dort dafür damit dabei davon dazu darauf darüber daran dessen deren diese dieser dieses diesen "  # de
    "eso esto ello ese esa esos esas este esta estos estas él ella ellos ellas su sus allí ahí "  # es
    "esso essa questo questa quello quella lì "  # it
    "isso isto ele ela eles elas aquilo esse essa esses essas nesse nessa desse dessa "  # pt
    "यह वह ये वे इसका उसका इसकी उसकी इसके उसके इसे उसे इसमें उसमें इसको उसको इससे उससे इन्हें उन्हें इनको उनको "
    "इनका उनका इनकी उनकी इनके उनके इनसे उनसे इनमें उनमें "  # hi
    "ye yeh woh isko iska iski iske isse isme usko uska uski uske usse usme inka unka inko unko "  # hi, in Latin letters
    "हे ते त्याचा त्याची त्याचे याचा याची याचे त्यात यात".split()  # mr
)
# Italian text: its article "il" and preposition "su" are French and Spanish pronouns elsewhere.
_ITALIAN = frozenset("della dello delle degli nella nello sulla sullo alla allo dalla gli perché cosa chi è di del per "
                     "quindi possono può sono anche quanti quante dove fare nel sul dal".split())
_ITALIAN_HOMOGRAPHS = frozenset({"il", "su"})
# Words only German has, among the short ones a question is made of: "es", and "das", "dies", "die", "den",
# "dem" before a particle or the end however typed, are read as pronouns only beside one of them (Spanish
# "es" is "is": "¿qué es BM25?"). An "es" before a clause it announces is none ("wie lange dauert es, einen
# Pass zu beantragen", "…, bis die Erstattung kommt"): the clause's start is found once, from the end.
_GERMAN = frozenset("ist sind wann wie geht gehts dauert kostet kann muss darf wird auch noch nicht schon gilt welche welcher warum wieso".split())
_GERMAN_PARTICLES = frozenset(
    "auch noch denn dann schon wirklich eigentlich überhaupt genau immer nur jetzt mal bei für zurück weg vorbei".split())
_ES_CLAUSE = regex.compile(r",\s*+(?!(?:wenn|falls|ob|weil|obwohl|nachdem|sobald)\b)\p{L}+\s+\p{L}+|\b(?:dass|bis)\b|\bzu\s++\p{L}+[\s?!.]*+$", regex.IGNORECASE)
_CJK_REFERENCE = regex.compile(r"[它其]|这个|那个|这些|那些|这样|那样|他们|它们")
_GERMAN_DEMONSTRATIVE = regex.compile(
    r"(?<!^)\b(?:das|dies|die|den|dem)\b(?=\s*(?:$|[?!.,;:]|\s+(?:[a-zäöüß]|der\b|die\b|das\b|ein)))")
# Pronouns that are not a word of their own: French "c'est" (it is), inversions ("coûte-t-il") and object
# pronouns after a modal ("peut-on la congeler", "je peux le modifier"); Spanish, Italian and Portuguese
# pronouns on an infinitive ("exportarlo", "congelarla", "farlo") or before a modal ("lo puedo"); "the
# same" in any of its forms.
_BOUND_REFERENCE = regex.compile(
    r"\bc['’](?:est|était|etait)\b|\w-(?:t-)?(?:il|elle|ils|elles)\b"
    r"|(?:-(?:on|je|tu|nous|vous)|\b(?:peux|peut|pouvez|pouvons|peuvent|puis|dois|doit|devez|veux|veut|voulez|faut))"
    r"\s+(?:(?:me|m['’]|te|nous|vous)\s*)?(?:la|le|les|l['’]|en|y|lui|leur)\b"
    r"|\b(?:kannst|könntest|können|könnten)\s+(?:du|sie)\s+(?:mir\s+)?(?:das|es|dies)\b(?!\s+(?-i:\p{Lu}))"
    r"|\b\p{Ll}{3,}(?:ar|er|ir|ár|ér|ír)(?:lo|la|los|las|li|-lo|-la|-los|-las)\b"
    r"|\b(?:lo|la|los|las|li)\s+(?:puedo|puede|puedes|pueden|podemos|debo|debe|tengo|necesito|posso|può|puoi|devo|deve)\b"
    r"|\b(?:the\s+same|le\s+même|la\s+même|les\s+mêmes|das\s+gleiche|dasselbe|lo\s+mismo|el\s+mismo|la\s+misma"
    r"|lo\s+stesso|la\s+stessa|o\s+mesmo|a\s+mesma)\b",
    regex.IGNORECASE,
)

# "What is X?", "Define X", "Qu'est-ce que X ?", "Was ist X?", "¿Qué es X?", "什么是X", "X是什么", "X क्या है":
# a question that names what it asks about.
_DEFINITION = regex.compile(
    # after what only opens it: "ok, now explain what a deductible is", "thanks! can you tell me about X"
    r"^\s*(?:(?:ok|okay|thanks|thank\s+you|great|cool|alright|now|well|merci|bon|danke|gut|gracias|vale|bueno"
    r"|grazie|obrigad[oa]|(?:can|could|would)\s+you(?:\s+please)?)\b[\s,!.]*)*"
    r"[¿¡]?\s*(?:what\s+(?:is|are|'s|was|were|does)|what's|whats|who\s+(?:is|are|makes|develops|wrote|made)"
    r"|define|explain|describe|summari[sz]e|tell\s+me\s+about"
    r"|qu['’]est[\s-]+ce\s+(?:que|qu['’])|c['’]est\s+quoi|que\s+(?:signifie|veut\s+dire)|expliquez?|décris"
    r"|was\s+(?:ist|sind|bedeutet|macht)|wer\s+(?:ist|entwickelt)|erkläre?|beschreibe?"
    r"|qu[ée]\s+(?:es|son|significa|hace)|qui[ée]n\s+(?:es|desarrolla)|explica|describe"
    r"|cos['’]è|che\s+cos['’]è|o\s+que\s+é)\b"
    r"|^\s*什么是|是什么\s*[?？]?\s*$|क्या\s+है\s*[?？]?\s*$|काय\s+आहे\s*[?？]?\s*$",
    regex.IGNORECASE,
)

# Words that ask for more of the same rather than name a subject: "can you give an example?", "tell me
# more", "explain more simply".
_ELABORATION = frozenset(
    "example examples instance more details detail detailed elaborate else simpler simply briefly shorter longer "
    "clarify mean meaning again why exactly give show continue go on "
    "exemple exemples détails détail encore pourquoi précisément donner donne donnez montrer "
    "beispiel beispiele mehr genauer details warum weiter geben gib zeigen "
    "ejemplo ejemplos más detalles detalle por qué exactamente dar dame mostrar "
    "esempio perché dettagli dare dammi mostrare exemplo porquê dar mostrar "
    "थोड़ा thoda".split()
)

# Words, names with dots and hyphens kept whole ("llama.cpp", "gpt-oss-20b"); an apostrophe splits, so
# elided pronouns are seen ("qu'elle", "it's"); a French inverted pronoun is cut off ("peut-on").
_WORD = regex.compile(r"[\p{L}\p{N}\p{M}_]+(?:[.-][\p{L}\p{N}\p{M}_]+)*")
_INVERSION = regex.compile(r"-(?:t-)?(?:on|je|tu|il|elle|nous|vous|ils|elles|ce)$", regex.IGNORECASE)
_CJK_RUN = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]+")
# Characters that phrase a Chinese or Japanese question rather than name its subject.
_CJK_FUNCTION = regex.compile(r"什么|怎么|如何|哪个|哪些|为什么|是否|可以|使用|一点|一下|吗|呢|吧|的|了|是|在|有|和|与|我|你|请|用|个|么|说|得|再")


# Question words and modal verbs the stopword lists lack ("combien", "warum", "peux", "può"): they phrase
# the question, as "how" and "can" do.
_OTHER_QUESTION_WORDS = frozenset(
    "comment combien pourquoi quand où quel quelle quels quelles lequel laquelle lesquels "
    "peux peut pouvez pouvons peuvent puis dois doit devez doivent faut faire fait "
    "wie warum wann wo welche welcher welches welchen wieviel wozu woher wohin "
    "kann kannst können könnte muss musst müssen soll sollte darf machen "
    "cómo cuándo dónde cuál cuáles cuánto cuánta cuántos qué quién "
    "puedo puede puedes pueden podemos debo debe deben hacer "
    "cuántas cuántos cuánta quante quanti quantas quantos quanta "
    "come quando dove quale quali quanto perché chi posso può puoi possono devo deve fare senza "
    "como quando onde qual quais quanto pode podem devo deve fazer "
    # Hindi typed in Latin letters (Hinglish): postpositions, auxiliaries, question words
    "aur ka ki ke hai hain kya mein ko bhi agar nahi nahin kaise kitna kitne kitni kab kahan kaun ho sakta sakti "
    "sakte raha rahi rahe karun karu kare karna karein hota hoti hote tha thi ye yeh woh "
    # English contractions typed without their apostrophe ("whats the minimum order for that")
    "whats hows wheres whens whos whys isnt doesnt dont cant wont didnt arent ive youre theyre wasnt "
    "shouldnt couldnt wouldnt hasnt havent".split()
)


@lru_cache(maxsize=1)
def _function_words() -> frozenset[str]:
    """Every analysed language's stopwords, and the words that phrase a question: a short question's
    language is often undecidable ("Ist es schnell?"), and a word that is a function word anywhere is
    seldom a subject anywhere."""
    words: set[str] = set(QUESTION_WORDS) | set(bm25s_stopwords.STOPWORDS_EN_PLUS) | _OTHER_QUESTION_WORDS
    for code in STEMMERS:
        words |= profile(code).stopwords
    return frozenset(words)


@lru_cache(maxsize=1)
def _bare_function_words() -> frozenset[str]:
    """French, Spanish, Italian and Portuguese function words (and the question words of every language)
    typed without their accents, as people do in a hurry ("cuanto cuesta por dia", "tambem", "voce", "nao").
    Not German stopwords: "uber" (über) would be a function word."""
    words: set[str] = set()
    for code in ("fr", "es", "it", "pt"):
        if code in STEMMERS:
            words |= {_without_accents(w) for w in profile(code).stopwords}
    words |= {_without_accents(w) for w in _OTHER_QUESTION_WORDS}
    # words of other languages (and names) that some of them become: "what if my dog ate it", "a meme",
    # "fumes", "Sara", "São Paulo", "faro" (Spanish lighthouse, from Italian farò)
    return frozenset(w for w in words if w.isascii()) - {"ate", "meme", "sara", "fumes", "tenia", "sere", "sao", "faro"}


def _without_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))


def _text(question: str) -> str:
    return unicodedata.normalize("NFKC", question).strip()


def subject_words(question: str) -> list[str]:
    """The words of `question` that name what it is about: not function, question or elaboration words,
    nor pronouns; a run of Chinese or Japanese counts by its characters left after function characters,
    one word per two."""
    text = _HOW_MUCH.sub(" ", _OPENING.sub("", _text(question)))
    out: list[str] = []
    function = _function_words()
    bare = _bare_function_words()
    for run in _CJK_RUN.findall(text):
        rest = _CJK_FUNCTION.sub("", _CJK_REFERENCE.sub("", run))
        out += [rest[i:i + 2] for i in range(0, len(rest) - 1, 2)]
    for word in _WORD.findall(_CJK_RUN.sub(" ", text)):
        w = _INVERSION.sub("", word.lower())
        if (w in function or w in _ELABORATION or w in _REFERENCE_WORDS or w in _ADDITIVE_WORDS or len(w) < 2
                or w.isascii() and w in bare) and not any(c.isdigit() for c in w):
            continue
        out.append(w)
    return list(dict.fromkeys(out))


def refers_back(question: str) -> bool:
    """Does the question point at what was said before (a connective, a pronoun, a demonstrative)?"""
    return _reference(question) is not None


# A quoted term, or a name right after a Chinese demonstrative ("这个App"): what "this" points at is in
# the question itself ("what's this 'temperature' setting for?").
_QUOTED = regex.compile(r"['‘“\"«]\s*[\p{L}\p{N}][^'’”\"»]{0,60}['’”\"»]")
_DEMONSTRATIVE = frozenset("this that these those".split())
# "This" before a noun of its own names what it points at, the product or document at hand: "how do I
# clean the filter on this dishwasher", "ce lave-vaisselle", "nessa máquina", "यह सिरप". Not "that" and
# "those": "is that value kept?", "are those numbers in ms?" point back.
_DETERMINERS = frozenset(
    "this these ce cet cette ces dieser diese dieses diesen diesem este esta estos estas questo questa"
    " esse essa esses essas nesse nessa neste nesta यह ये".split())
_CJK_NAMED = regex.compile(r"(?:这个|那个)\s*[A-Za-z]")


def _cleaned(question: str) -> str:
    """The question without the phrases that only look like a reference back ("is there", "one more
    thing") and with what a Chinese demonstrative names removed ("这个App")."""
    text: str = _CJK_NAMED.sub(" ", _IMPERSONAL.sub(" ", _NEW_TOPIC.sub(" ", _text(question))))
    return text


def _continues(text: str) -> bool:
    """Does it start by continuing the previous question ("and…", "what about…", "…呢")?"""
    return bool(_CONNECTIVE.search(text) or _FINAL_NE.search(text))


def _pronoun_at(text: str) -> int | None:
    """Where its first pronoun or demonstrative is (a character offset), or None."""
    quoted = bool(_QUOTED.search(text))
    found: list[int] = []
    for pattern in (_CJK_REFERENCE, _BOUND_REFERENCE):
        if match := pattern.search(text):
            found.append(match.start())
    # German articles look like pronouns in text typed all lowercase ("wie funktioniert die eskalation"):
    # only read in a question typed with capitals.
    if (match := _GERMAN_DEMONSTRATIVE.search(text)) and regex.match(r"\P{L}*\p{Lu}", text):
        found.append(match.start())
    # An all-capitals word is a name, not a pronoun: "IT support", "the ER", "ESO".
    words = [(m.start(), m.group().lower()) for m in _WORD.finditer(text) if not (len(m.group()) > 1 and m.group().isupper())]
    plain = [w for _, w in words]
    italian = bool(_ITALIAN.intersection(plain)) or "il" in plain and detect_surely(text, plain, False) == ("it", True)
    if _GERMAN.intersection(plain):
        # However typed, German shows these pronouns by where they stand: "das", "dies", "die" before a
        # particle or the end ("geht das auch aufm mac", "wann krieg ich die zurück"), not before a noun
        # ("ist das kind krank"); "es" unless a clause it announces follows, and only in a short message
        # ("ab wann ist es offen"; "gibt es" was removed before): a longer one with "es" is more often about
        # the weather or the way of things ("wird es morgen in hamburg regnen").
        clause_at = max((m.start() for m in _ES_CLAUSE.finditer(text)), default=-1)
        short = len(subject_words(text)) < 3
        found += [at for i, (at, w) in enumerate(words)
                  if w == "es" and at > clause_at and short or w in ("das", "dies", "die", "den", "dem")
                  and (i + 1 == len(words) or words[i + 1][1] in _GERMAN_PARTICLES)]
    found += [at for i, (at, w) in enumerate(words)
              if w in _REFERENCE_WORDS and not (italian and w in _ITALIAN_HOMOGRAPHS) and not (quoted and w in _DEMONSTRATIVE)
              and not (w in _DETERMINERS and i + 1 < len(words) and _names(words[i + 1][1])
                       and not text[at + len(w):words[i + 1][0]].strip())]
    return min(found) if found else None


def _names(word: str) -> bool:
    """Is it a word that names something (not a function word, pronoun or question word)?"""
    return len(word) >= 3 and word not in _function_words() and word not in _REFERENCE_WORDS and word not in _ELABORATION


def _reference(question: str) -> str | None:
    """How the question refers back: "connective" (it continues the previous one), "pronoun", or None."""
    text = _cleaned(question)
    if _continues(text):
        return "connective"
    return "pronoun" if _pronoun_at(text) is not None else None


def _asks_again(text: str, own: list[str], pronoun: bool) -> bool:
    """Does it ask for the previous answer again, otherwise ("simpler please", "bullet points pls",
    "explícamelo más fácil", "me lo traduci in inglese?", "说简单点")? A request, not a question with a
    question word, whose other words name no subject of their own (one at most, or "it")."""
    if _ASKS.search(text) or _EMBEDDED_QUESTION.search(text) or _CJK_ASKS.search(text):
        return False
    if _REFORMULATE_CJK.search(text):
        return len(subject_words(_REFORMULATE_CJK.sub(" ", text))) <= 1
    asked = [w.lower() for w in _WORD.findall(text) if _REFORMULATE.fullmatch(w)]
    if not asked:
        return False
    translating = bool(_TRANSLATE.search(text))
    rest = [w for w in own if not _REFORMULATE.fullmatch(w) and w not in _COURTESY
            and not (translating and w in _LANGUAGES)]
    if rest and _DEFINITION.search(text):
        return False  # "Explain photosynthesis", "Summarize the GDPR": a subject of its own
    if all(w in _WEAK_REFORMULATE for w in asked):
        return not rest
    return pronoun or len(rest) <= 1


def _stems(words: Iterable[str]) -> set[str]:
    """Crude stems for the shared-word test: the first five letters (ports/port, escalated/escalation)."""
    return {w[:5] for w in words}


# "What is LM Studio and how do I install it?", "How does BM25 rank passages, and why is it fast?": a name
# (capitals inside or after the start, or digits), then a second clause whose pronoun stands for it.
# Three searches, each from where the last ended, on one line: as one pattern (name, lazy gap, connective,
# gap, pronoun) it tried the gap from every word, and "tried it " x 1,000 took 2 s, x 4,000 32 s.
_SECOND_CLAUSE_NAME = regex.compile(r"(?:\b\w*\d\w*|(?<=\S\s+)\p{Lu}\w*|\b\p{Ll}+\p{Lu}\w*)\b",
                                    regex.IGNORECASE | regex.VERSION1)
_SECOND_CLAUSE_JOIN = regex.compile(r",|;|\b(?:and|but|und|aber|et|mais|y|pero|e|ma)\b", regex.IGNORECASE | regex.VERSION1)
_SECOND_CLAUSE_PRONOUN = regex.compile(r"\b(?:it|its|they|them|their|il|elle|es|er|sie|él|ella|lo|la|esso|essa)\b",
                                       regex.IGNORECASE | regex.VERSION1)


def _second_clause(text: str) -> bool:
    """A name, then a connective, then a pronoun, on one line (the earliest name and the earliest connective
    after it: any later ones would leave less room for the pronoun)."""
    start = 0
    for line in text.split("\n"):
        name = _SECOND_CLAUSE_NAME.search(text, start, start + len(line))
        join = name and _SECOND_CLAUSE_JOIN.search(text, name.end(), start + len(line))
        if join and _SECOND_CLAUSE_PRONOUN.search(text, join.end(), start + len(line)):
            return True
        start += len(line) + 1
    return False

# A demonstrative as the question's subject, in its first words: what it points at is what was said, however
# long the rest ("does this also apply to...", "is that also true for...", "gilt das auch für...").
_LEADING_DEMONSTRATIVE = regex.compile(
    r"^\W*(?:(?:is|are|does|do|did|can|will|would|was|gilt|ist|gibt|vale|valeu|vaut|sirve|funciona|cuenta|conta)\s+)?"
    r"(?:this|that|these|those|ça|cela|das|dies|eso|esto|isso|isto|questo|quello)\s+"
    r"(?:also|too|still|really|only|even|apply|applies|count|counts|cover|covers|include|includes|work|works|mean|hold"
    r"|holds|change|changes|matter|auch|noch|wirklich|también|todavía|aussi|encore|anche|ancora|também|ainda)\b",
    regex.IGNORECASE,
)
# A question with this many subject words is read as new even with a pronoun in it ("I uploaded a file
# with tables in it, but when I ask about those tables...").
LONG = 5
# A pronoun after this many subject words of its own question stands for one of them.
ANTECEDENT = 3


def is_follow_up(question: str, previous: str) -> bool:
    """Whether `question`, asked after `previous`, needs it to be understood (see the module's docstring)."""
    text = _text(question)
    if _CORRECTION.search(text):
        return True  # "I meant the extender": the previous question, corrected
    own = subject_words(question)
    cleaned = _cleaned(question)
    pronoun = _pronoun_at(cleaned)
    if _asks_again(text, own, pronoun is not None):
        return True
    if (failed := _FAILED_FIRST.search(text)) and _reports_failure(text[failed.end():]) or _TOPIC_NE.search(text):
        return True  # "didnt work, screen still shows E4"; "孩子呢？6岁"
    if (opening := _NEW_TOPIC.search(text)) and opening.start() <= 12 and own:
        return False  # "one more thing: are the EU and UK chargers the same?", "by the way, ..."
    if _carries_on(text, cleaned, previous):
        return True
    continues = _continues(cleaned)
    if pronoun is not None:
        before = subject_words(cleaned[:pronoun])
        if _DID_NOT_WORK.search(text) and len(before) < ANTECEDENT:
            return True  # "ye step kaam nahi kar raha, submit button grey hai"; not "my new printer: it doesn't work"
        if continues:  # "and how fast is it?", "what if I lose my phone after setting it up"
            # "y las clases de spinning, ¿hay que reservarlas?": the pronoun's noun, set apart after "and";
            # "et le plafond de retrait de la carte gold c'est combien ?": four subject words before it
            return (len(own) < LONG and len(before) <= ANTECEDENT
                    and not _TOPIC.match(_CONNECTIVE.sub("", cleaned[:pronoun], count=1)))
        if _LEADING_DEMONSTRATIVE.match(cleaned):
            return True  # "does this also apply to the punch card I bought in january or only the monthly plans"
        # "If I lose my badge, who do I tell about it?": what "it" stands for comes before it
        return not (len(before) >= ANTECEDENT or len(own) >= LONG or _second_clause(text))
    if _NEW_TOPIC.search(text) and own:
        return False  # "one more thing: does the policy cover skiing?", "by the way, ..."
    earlier = subject_words(previous)
    shared = bool(_stems(own) & _stems(earlier))
    named = [w for w in own if not w.isdigit() and w not in _COURTESY]  # "for a 6 year old?": the 6 is a value
    conversion = len(_TIME_UNITS.intersection(own)) >= 2 and not _PER.search(text)
    if own and all(w in _MEASURES for w in own) and not _DEFINITION.search(text) and not conversion:
        return True  # "cuánto cuesta por persona", "até que horas no máximo", "und wie teuer ist der Eintritt?"
    if continues:
        # "and where do I throw away old batteries?": a connective, then a whole question of its own;
        # "e dopo tre anni?": a connective, then a fragment
        if _ONLY_CONTINUES.search(cleaned) or _FINAL_NE.search(cleaned):
            return True
        if _ALSO_ASKS.search(text):
            return False
        rest = _CONNECTIVE.sub("", cleaned, count=1)
        # "and how do I renew my passport": a question word and two subject words of its own; not when one
        # of them is a measure of what was asked ("and what's the cancellation fee?", "and how old do kids
        # have to be?"), except a time ("and whats the checkout time")
        whole = _ASKS.search(rest) and not shared and not any(
            w in _MEASURES and w not in _TIME_UNITS and w not in ("time", "times") or w == "old" for w in own)
        return bool((_FRAGMENT.search(rest) or _FRAGMENT_END.search(rest)) and len(named) <= 3) or len(own) < (2 if whole else 3)
    if own and _DEFINITION.search(text):
        return False
    if _changes_a_value(own, earlier):
        return True  # "year 11" after "the late homework policy for year 9"
    # up to three words when nothing follows a comma ("für ein doppelt so großes Blech?"); not "for remote
    # employees, is there a stipend?"
    if len(named) <= (2 if "," in text else 3) and (_FRAGMENT.search(text) or _FRAGMENT_END.search(text)) or len(named) <= 2 and (_ADDITIVE.search(text) or _DEFINITE.search(text)):
        return True  # "for a 6 year old?", "für ein doppelt so großes Blech?", "weekend too?", "the default value?"
    if len(own) >= 3 or (len(own) == 2 and not (shared and not _new_name(question, earlier))):
        return False
    return True


def _reports_failure(rest: str) -> bool:
    """After "didn't work" said first: what was seen ("screen still shows E4"), or "what now?"; not a question
    of its own ("…, do I need to tell HR?", "no funciona mi tarjeta, ¿a quién llamo?", "不行，打印机卡纸了怎么办？")."""
    own = len(subject_words(rest))
    return own <= 1 or (own < LONG and "?" not in rest and "？" not in rest)


def _carries_on(text: str, cleaned: str, previous: str) -> bool:
    """Is it said about the previous question or answer, however long: "you said 3 but...", "explain like
    I'm 10", "same question for the petrol version", "and if I cancel after six months?", "which one would
    you pick for someone who needs two crowns?"."""
    if any(pattern.search(text) for pattern in (_ANSWER, _ASK_AGAIN, _ASK_AGAIN_FIRST, _SAME_QUESTION, _INSTEAD,
                                                _CHANGES_ANYTHING, _HINDI_THEN, _CJK_ALSO)):
        return True
    if (fits := _DOES_THAT_WORK.search(text)) and (fits.group("fits") or len(subject_words(text[:fits.start()])) < 4):
        return True
    if ((compared := _COMPARED.search(text)) and not _THAN.match(text, compared.end())
            and len(subject_words(text[compared.end():])) <= 1):
        return True
    if (thought := _THOUGHT.search(text)) and len([w for w in subject_words(text[thought.end():]) if not w[0].isdigit()]) < 3:
        return True
    german_then = (then := _GERMAN_THEN.search(text)) and not _ASKS.search(text) and len(subject_words(text[then.end():])) <= 1
    if (_DRAWS_ON.search(text) or german_then) and not _OWN_CONDITION.search(text):
        return True
    if (match := _AND_IF.search(cleaned)) and not _EMBEDDED_QUESTION.search(rest := cleaned[match.end():]):
        # not "y si me equivoco, ¿cómo la corrijo?", "even if I work remotely, am I entitled to a meal
        # allowance?": a question of its own after the condition
        clause = regex.split(r"[,;:]", rest, maxsplit=1)
        if len(clause) == 1 or len(subject_words(clause[1])) < 3:
            return True
    picks = _PICKS.search(text) and _compares(previous)
    return bool((_CHOICE.search(text) or picks) and not _OPTIONS_NAMED.search(text))


def _changes_a_value(own: list[str], earlier: list[str]) -> bool:
    """Is the question the previous one's words with another number ("year 11" after "... for year 9")?"""
    numbers = [w for w in own if any(c.isdigit() for c in w)]
    return 0 < len(own) <= 3 and bool(numbers) and not set(numbers) & set(earlier) and \
        all(w in numbers or w[:5] in _stems(earlier) for w in own)


def _compares(previous: str) -> bool:
    """Does the previous question name options to choose from ("the difference between A and B", "A or B")?"""
    return bool(_COMPARES.search(previous) or _OPTIONS_NAMED.search(previous))


def _new_name(question: str, earlier: list[str]) -> bool:
    """Does the question name something the previous one did not: a capitalised word not at its start
    ("Do I need a visa for Vietnam?" after a visa for Japan), or a word with digits or inner capitals?"""
    words = _WORD.findall(_text(question))
    names = [w for i, w in enumerate(words)
             if (i > 0 and w[:1].isupper()) or any(c.isdigit() for c in w) or any(c.isupper() for c in w[1:])]
    return any(w.lower() not in earlier for w in names if w.lower() not in _function_words())


# How many earlier questions a chain of follow-ups carries ("Which port does Ollama use?" → "What about
# LM Studio?" → "And vLLM?": the last needs the first's "port").
CHAIN = 3


def retrieval_query(question: str, history: Sequence[Turn]) -> tuple[str, str]:
    """What to retrieve with: the question, and what it follows ("" when it is new): the previous question,
    and the ones before it while each was itself a follow-up, back to the one the chain started from (its
    first and its latest, CHAIN in all). The search weighs their words below the question's own."""
    if not history or not is_follow_up(question, history[-1].question):
        return question, ""
    start = len(history) - 1  # the question the chain of follow-ups started from
    while start > 0 and is_follow_up(history[start].question, history[start - 1].question):
        start -= 1
    chain = [turn.question for turn in history[start:]]
    if len(chain) > CHAIN:  # its first question (the subject) and the latest ones
        chain = [chain[0], *chain[-(CHAIN - 1):]]
    return question, "\n".join(chain)
