"""rsmt_studio.assets"""
