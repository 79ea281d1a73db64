// placeholder: filled by the select op family
#pragma once
